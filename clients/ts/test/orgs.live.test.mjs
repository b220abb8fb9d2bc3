// @ts-check
// Organizations through the SDK's typed calls against a live rolegate
// (sign-up open, as the Go harness sdk_test.go starts it): one account
// makes an organization, adds another as a viewer and writes a shared
// note; the viewer reads it and may not write one (403 naming the org
// roles), and a third account, no member, gets 404. Without ROLEGATE_URL
// these tests are skipped.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { createRolegateClient } from "../src/index.js";

const baseUrl = process.env.ROLEGATE_URL ?? "";
const password = "correct horse battery staple";

/** A new account, logged in. */
async function person() {
  const email = `org-${randomUUID()}@example.com`;
  const signup = await createRolegateClient({ baseUrl }).POST("/signup", { body: { email, password } });
  assert.equal(signup.response.status, 202);
  const rg = createRolegateClient({ baseUrl });
  assert.ok((await rg.login(email, password)).data, "login");
  const me = await rg.GET("/identify/me");
  return { rg, id: me.data?.id ?? 0 };
}

describe("organizations", { skip: baseUrl === "" ? "ROLEGATE_URL is not set" : false }, () => {
  test("an owner, a viewer and someone who is no member", async () => {
    const [owner, viewer, outsider] = [await person(), await person(), await person()];
    const slug = `ts-${randomUUID().slice(0, 8)}`;
    const org = await owner.rg.POST("/orgs", { body: { slug, name: "TS org" } });
    assert.equal(org.response.status, 201);
    const orgId = org.data?.id ?? 0;
    const path = { orgId };
    const member = await owner.rg.PUT("/orgs/{orgId}/members/{userId}", { params: { path: { orgId, userId: viewer.id } }, body: { roles: ["viewer"] } });
    assert.equal(member.response.status, 200);
    const note = await owner.rg.POST("/orgs/{orgId}/notes", { params: { path }, body: { document_src: "q3.pdf", title: "Plan", body: "Shared." } });
    assert.equal(note.response.status, 201);

    const list = await viewer.rg.GET("/orgs/{orgId}/notes", { params: { path } });
    assert.equal(list.data?.items.length, 1);
    const denied = await viewer.rg.POST("/orgs/{orgId}/notes", { params: { path }, body: { document_src: "q3.pdf", title: "No", body: "No." } });
    assert.equal(denied.response.status, 403);
    assert.ok(denied.error && "required_roles" in denied.error && denied.error.required_roles?.includes("org:editor"));
    const hidden = await outsider.rg.GET("/orgs/{orgId}", { params: { path } });
    assert.equal(hidden.response.status, 404);
  });
});
