// @ts-check
// The SDK's session against a live rolegate: refresh on a refused token and
// before expiry, one refresh for concurrent calls, a refused refresh, and
// logout. The Go harness (sdk_test.go) starts the server and sets, besides
// ROLEGATE_URL:
//   ROLEGATE_TEST_ADMIN_EMAIL, ROLEGATE_TEST_ADMIN_PASSWORD  an account with role admin
// Each test makes accounts of its own through the API, so that changing
// their roles or ending their sessions touches no other test.
// Without ROLEGATE_URL these tests are skipped.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import { REFRESH_BEFORE_EXPIRY_MS, createRolegateClient } from "../src/index.js";

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
 * A fetch for the SDK that records what it sends: the refresh grants, and
 * every other request's path, bearer token and answer.
 */
function spyFetch() {
  const spy = {
    /** POST /token with grant_type=refresh_token */
    refreshes: 0,
    /** @type {{ path: string, bearer: string | undefined, status: number }[]} */
    calls: [],
    /** @param {Request} request */
    fetch: async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/token" && new URLSearchParams(await request.clone().text()).get("grant_type") === "refresh_token") {
        spy.refreshes++;
      }
      const bearer = request.headers.get("Authorization")?.replace(/^Bearer /, "");
      const response = await fetch(request);
      spy.calls.push({ path, bearer, status: response.status });
      return response;
    },
  };
  return spy;
}

/** An administrator's client. */
async function admin() {
  const client = createRolegateClient({ baseUrl });
  const { error, response } = await client.login(env("ROLEGATE_TEST_ADMIN_EMAIL"), env("ROLEGATE_TEST_ADMIN_PASSWORD"));
  assert.equal(response.status, 200, `admin login: ${JSON.stringify(error)}`);
  return client;
}

/**
 * An account of the test's own with role user, and a client logged in as it
 * through a spying fetch.
 * @param {import("../src/index.js").SessionOptions} [options]
 */
async function freshUser(options) {
  const adm = await admin();
  const email = `sdk-session-${randomUUID()}@example.com`;
  const password = randomUUID();
  const created = await adm.POST("/users", { body: { email, password, roles: ["user"] } });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data);
  const id = created.data.id;
  const spy = spyFetch();
  const client = createRolegateClient({ baseUrl, fetch: spy.fetch, ...options });
  const login = await client.login(email, password);
  assert.equal(login.response.status, 200, JSON.stringify(login.error));
  assert.ok(login.data?.refresh_token, "the password grant answers a refresh token");
  return {
    client,
    spy,
    login: login.data,
    /**
     * Replaces the account's roles as the administrator: every access token
     * of the account issued before stops working.
     * @param {string[]} roles
     */
    async setRoles(roles) {
      const r = await adm.PUT("/users/{id}/roles", { params: { path: { id } }, body: { roles } });
      assert.equal(r.response.status, 200, JSON.stringify(r.error));
    },
  };
}

/**
 * GET /identify/me with the given access token, outside the SDK.
 * @param {string} accessToken
 */
function rawMe(accessToken) {
  return fetch(`${baseUrl}/identify/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
}

/**
 * POST to a token endpoint, form-encoded, outside the SDK.
 * @param {"/token" | "/token/revoke"} path
 * @param {Record<string, string>} form
 */
function rawTokenPost(path, form) {
  return fetch(`${baseUrl}${path}`, { method: "POST", body: new URLSearchParams(form) });
}

/**
 * Waits until the server refuses accessToken with 401 invalid_token.
 * Revocations reach the server's per-request check through the database's
 * log (LISTEN/NOTIFY), a moment after the change is committed.
 * @param {string} accessToken
 */
async function untilRefused(accessToken) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await rawMe(accessToken);
    await r.body?.cancel();
    if (r.status === 401) {
      assert.match(r.headers.get("WWW-Authenticate") ?? "", /error="invalid_token"/);
      return;
    }
    assert.equal(r.status, 200);
    if (Date.now() > deadline) {
      assert.fail("the server still accepts the access token 10 s after its revocation");
    }
    await sleep(20);
  }
}

describe("the SDK's session against a live server", { skip: baseUrl ? false : "ROLEGATE_URL is not set" }, () => {
  test("after an admin changes the roles, the next call refreshes once, is retried, and sees the new roles", async () => {
    const { client, spy, login, setRoles } = await freshUser();
    const before = await client.GET("/identify/me");
    assert.deepEqual(before.data?.roles, ["user"]);

    await setRoles(["user", "system"]);
    await untilRefused(login.access_token);
    spy.calls.length = 0;
    const after = await client.GET("/identify/me");
    assert.equal(after.response.status, 200, JSON.stringify(after.error));
    assert.deepEqual([...(after.data?.roles ?? [])].sort(), ["system", "user"]);
    assert.equal(spy.refreshes, 1);
    assert.notEqual(client.token, login.access_token);
    assert.deepEqual(
      spy.calls.map((c) => [c.path, c.status, c.bearer]),
      [
        ["/identify/me", 401, login.access_token],
        ["/token", 200, undefined],
        ["/identify/me", 200, client.token],
      ],
    );

    // A request with a body is sent again whole.
    const second = client.token;
    assert.ok(second);
    await setRoles(["user"]);
    await untilRefused(second);
    const note = await client.POST("/notes", { body: { document_src: "retried.pdf", title: "retried", body: "sent twice" } });
    assert.equal(note.response.status, 201, JSON.stringify(note.error));
    assert.equal(note.data?.title, "retried");
    assert.equal(note.data?.body, "sent twice");
    assert.equal(spy.refreshes, 2);
  });

  test("a 401 for another reason, or from /token, is not retried", async () => {
    const { client, spy } = await freshUser();
    const own = await client.GET("/identify/me", { headers: { Authorization: "Bearer not-a-token" } });
    assert.equal(own.response.status, 401);
    assert.match(own.response.headers.get("WWW-Authenticate") ?? "", /error="invalid_token"/);
    assert.equal(spy.refreshes, 0, "a token the caller set is the caller's");

    const anonymousSpy = spyFetch();
    const anonymous = createRolegateClient({ baseUrl, fetch: anonymousSpy.fetch });
    const none = await anonymous.GET("/identify/me");
    assert.equal(none.response.status, 401);
    const wrong = await anonymous.login(env("ROLEGATE_TEST_ADMIN_EMAIL"), "not the password");
    assert.equal(wrong.response.status, 400);
    assert.deepEqual(
      anonymousSpy.calls.map((c) => [c.path, c.status]),
      [
        ["/identify/me", 401],
        ["/token", 400],
      ],
    );
  });

  test("shortly before the access token expires, the client refreshes before sending", async () => {
    let clock = Date.parse("2030-01-01T00:00:00Z");
    const { client, spy, login } = await freshUser({ now: () => clock });
    const lifetime = login.expires_in * 1000;
    assert.ok(lifetime > 2 * REFRESH_BEFORE_EXPIRY_MS, `expires_in ${login.expires_in} leaves room for the test`);

    clock += lifetime - REFRESH_BEFORE_EXPIRY_MS - 1000;
    const early = await client.GET("/identify/me");
    assert.equal(early.response.status, 200);
    assert.equal(spy.refreshes, 0, "a token with more than the margin left is sent");
    assert.equal(client.token, login.access_token);

    clock += 2000;
    spy.calls.length = 0;
    const late = await client.GET("/identify/me");
    assert.equal(late.response.status, 200, JSON.stringify(late.error));
    assert.equal(spy.refreshes, 1);
    assert.notEqual(client.token, login.access_token);
    assert.deepEqual(
      spy.calls.map((c) => [c.path, c.status, c.bearer]),
      [
        ["/token", 200, undefined],
        ["/identify/me", 200, client.token],
      ],
    );

    // The new token's lifetime counts from when it was received.
    await client.GET("/identify/me");
    assert.equal(spy.refreshes, 1);
  });

  test("concurrent calls that need a refresh share one", async () => {
    let clock = Date.now();
    const { client, spy, login, setRoles } = await freshUser({ now: () => clock });

    await setRoles(["user", "system"]);
    await untilRefused(login.access_token);
    const refused = await Promise.all(Array.from({ length: 8 }, () => client.GET("/identify/me")));
    assert.deepEqual(
      refused.map((r) => r.response.status),
      Array(8).fill(200),
    );
    assert.equal(spy.refreshes, 1, "eight refused calls, one refresh");

    clock += login.expires_in * 1000;
    const expiring = await Promise.all(Array.from({ length: 8 }, () => client.GET("/identify/me")));
    assert.deepEqual(
      expiring.map((r) => r.response.status),
      Array(8).fill(200),
    );
    assert.equal(spy.refreshes, 2, "eight calls near expiry, one refresh");
  });

  test("a refused refresh drops the tokens, and the call gets its 401", async () => {
    const { client, spy, login } = await freshUser();
    assert.ok(login.refresh_token);
    // Ends the session behind the client's back, as another tab logging
    // out would.
    const revoked = await rawTokenPost("/token/revoke", { token: login.refresh_token });
    assert.equal(revoked.status, 200);
    await untilRefused(login.access_token);

    const me = await client.GET("/identify/me");
    assert.equal(me.response.status, 401);
    assert.match(me.response.headers.get("WWW-Authenticate") ?? "", /error="invalid_token"/);
    assert.equal(me.error?.status, 401);
    assert.equal(spy.refreshes, 1);
    assert.equal(client.token, undefined);

    const again = await client.GET("/identify/me");
    assert.equal(again.response.status, 401);
    assert.equal(again.response.headers.get("WWW-Authenticate"), 'Bearer realm="rolegate"', "no token is sent any more");
    assert.equal(spy.refreshes, 1);
  });

  test("logout revokes the session: its access token and its refresh token stop working", async () => {
    const { client, spy, login } = await freshUser();
    assert.ok(login.refresh_token);
    const pending = client.logout();
    assert.equal(client.token, undefined, "the tokens are forgotten at once");
    const result = await pending;
    assert.equal(result?.response.status, 200);

    await untilRefused(login.access_token);
    const refresh = await rawTokenPost("/token", { grant_type: "refresh_token", refresh_token: login.refresh_token });
    assert.equal(refresh.status, 400);
    const body = /** @type {import("../src/index.js").OAuthError} */ (await refresh.json());
    assert.equal(body.error, "invalid_grant");

    const me = await client.GET("/identify/me");
    assert.equal(me.response.status, 401);
    assert.equal(spy.refreshes, 0);
    assert.equal(await client.logout(), undefined, "nothing left to revoke");
  });
});
