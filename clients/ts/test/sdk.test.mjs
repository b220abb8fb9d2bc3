// @ts-check
// The SDK against a live rolegate. The Go harness (sdk_test.go) starts one on
// a fresh database, creates the two accounts and sets:
//   ROLEGATE_URL                                        the server's root URL
//   ROLEGATE_TEST_EMAIL, ROLEGATE_TEST_PASSWORD         an account with role user
//   ROLEGATE_TEST_OTHER_EMAIL, ROLEGATE_TEST_OTHER_PASSWORD  one with only role system
// Without ROLEGATE_URL these tests are skipped.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { createRolegateClient } from "../src/index.js";

const baseUrl = process.env.ROLEGATE_URL ?? "";

/** @param {string} name */
function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (ROLEGATE_URL is)`);
  }
  return v;
}

/**
 * A client logged in as the account in the given variables.
 * @param {string} prefix e.g. ROLEGATE_TEST or ROLEGATE_TEST_OTHER
 */
async function loggedIn(prefix) {
  const email = env(`${prefix}_EMAIL`);
  const client = createRolegateClient({ baseUrl });
  const { data, error, response } = await client.login(email, env(`${prefix}_PASSWORD`));
  assert.equal(response.status, 200, `login as ${email}: ${JSON.stringify(error)}`);
  assert.ok(data);
  assert.equal(data.token_type, "bearer");
  assert.ok(data.expires_in > 0);
  assert.equal(client.token, data.access_token);
  return { client, email };
}

describe("rolegate SDK against a live server", { skip: baseUrl ? false : "ROLEGATE_URL is not set" }, () => {
  test("login through /token, then GET /identify/me is the caller", async () => {
    const { client, email } = await loggedIn("ROLEGATE_TEST");
    const { data, error, response } = await client.GET("/identify/me");
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.kind, "user");
    assert.equal(data.email, email);
    assert.deepEqual(data.roles, ["user"]);
    assert.ok((data.id ?? 0) > 0);
  });

  test("notes: create two, list them newest first, list them by document", async () => {
    const { client } = await loggedIn("ROLEGATE_TEST");
    // A slash and a space in the path segment; unique so that reruns against
    // one server do not see each other's notes on this document.
    const src = `reports/${randomUUID()} q3.pdf`;
    /** @type {number[]} */
    const ids = [];
    for (const title of ["first", "second"]) {
      const { data, error, response } = await client.POST("/notes", {
        body: { document_src: src, title, body: `${title} body` },
      });
      assert.equal(response.status, 201, JSON.stringify(error));
      assert.ok(data);
      assert.equal(data.title, title);
      assert.equal(data.document_src, src);
      assert.equal(data.body, `${title} body`);
      assert.match(response.headers.get("Location") ?? "", new RegExp(`/notes/${data.id}$`));
      ids.push(data.id);
    }

    const page = await client.GET("/notes", { params: { query: { limit: 2 } } });
    assert.equal(page.response.status, 200, JSON.stringify(page.error));
    assert.ok(page.data);
    assert.deepEqual(
      page.data.items.map((n) => n.id),
      [ids[1], ids[0]],
      "GET /notes lists the newest first",
    );

    const byDoc = await client.GET("/notes/document/src/{src}", { params: { path: { src } } });
    assert.equal(byDoc.response.status, 200, JSON.stringify(byDoc.error));
    assert.ok(byDoc.data);
    assert.deepEqual(
      byDoc.data.map((n) => [n.id, n.title]),
      [
        [ids[1], "second"],
        [ids[0], "first"],
      ],
    );

    const none = await client.GET("/notes/document/src/{src}", { params: { path: { src: `${src}.other` } } });
    assert.deepEqual(none.data, []);
  });

  test("a role the operation does not admit: 403, insufficient_scope, problem+json", async () => {
    const { client } = await loggedIn("ROLEGATE_TEST_OTHER");
    const me = await client.GET("/identify/me");
    assert.deepEqual(me.data?.roles, ["system"]);

    const { data, error, response } = await client.POST("/notes", {
      body: { document_src: "d.pdf", title: "not allowed", body: "" },
    });
    assert.equal(response.status, 403);
    assert.equal(data, undefined);
    assert.match(response.headers.get("WWW-Authenticate") ?? "", /^Bearer .*error="insufficient_scope"/);
    assert.equal(response.headers.get("Content-Type"), "application/problem+json");
    assert.ok(error);
    assert.equal(error.status, 403);
    assert.equal(error.type, "about:blank");
    assert.ok(error.title);
    assert.equal(error.request_id, response.headers.get("X-Request-Id"));
  });

  test("a wrong password: 400 invalid_grant, and no token is sent afterwards", async () => {
    const client = createRolegateClient({ baseUrl });
    const { data, error, response } = await client.login(env("ROLEGATE_TEST_EMAIL"), `${env("ROLEGATE_TEST_PASSWORD")}x`);
    assert.equal(response.status, 400);
    assert.equal(data, undefined);
    assert.ok(error);
    assert.ok("error" in error, `RFC 6749 body: ${JSON.stringify(error)}`);
    assert.equal(error.error, "invalid_grant");
    assert.equal(response.headers.get("Cache-Control"), "no-store");
    assert.equal(client.token, undefined);

    const me = await client.GET("/identify/me");
    assert.equal(me.response.status, 401);
    assert.match(me.response.headers.get("WWW-Authenticate") ?? "", /^Bearer realm="rolegate"/);
    assert.equal(me.error?.status, 401);
  });

  test("logout stops sending the token", async () => {
    const { client } = await loggedIn("ROLEGATE_TEST");
    const revoked = await client.logout();
    assert.equal(revoked?.response.status, 200);
    assert.equal(client.token, undefined);
    const me = await client.GET("/identify/me");
    assert.equal(me.response.status, 401);
  });
});

// Never run: tsc (typecheck.test.mjs) fails if the SDK's types stop
// following the spec, e.g. if the paths degrade to any.
/** @param {import("../src/index.js").RolegateClient} client */
export async function typeOnly(client) {
  // @ts-expect-error: not a path of the spec
  await client.GET("/no-such-path");
  // @ts-expect-error: title is required by NoteCreate
  await client.POST("/notes", { body: { document_src: "d", body: "" } });
  const { data } = await client.GET("/identify/me");
  // @ts-expect-error: Identity has no field named name
  return data?.name;
}
