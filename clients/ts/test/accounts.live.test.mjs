// @ts-check
// Accounts that help themselves, through the SDK's typed calls against a
// live rolegate with sign-up open: sign-up, proving the address, a
// forgotten password and a move to another address, each confirmed with
// the token of the link its mail carried. The Go harness (sdk_test.go)
// starts the server with ROLEGATE_SIGNUP=open and its mail going to an
// SMTP server of the test's, and sets, besides ROLEGATE_URL:
//   ROLEGATE_TEST_MAILBOX_URL  GET: a JSON array of the mails taken so far,
//                              [{ to: string[], subject, text }], in order
// Each run signs up an address of its own. Without ROLEGATE_URL these
// tests are skipped.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import { createRolegateClient } from "../src/index.js";

/** @typedef {import("../src/index.js").Problem} Problem */

const baseUrl = process.env.ROLEGATE_URL ?? "";

/** @param {string} name */
function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (ROLEGATE_URL is)`);
  }
  return v;
}

/** @typedef {{ to: string[], subject: string, text: string }} Mail a mail as the harness's mailbox shows it */

/**
 * The mails to address so far, in the order they arrived.
 * @param {string} address
 */
async function mailsTo(address) {
  const response = await fetch(env("ROLEGATE_TEST_MAILBOX_URL"));
  assert.equal(response.status, 200, "the harness's mailbox");
  return /** @type {Mail[]} */ (await response.json()).filter((m) => m.to.includes(address));
}

/**
 * The first mail to address that matches, waiting up to 10 s for it.
 * @param {string} address
 * @param {string} what for the failure
 * @param {(m: Mail) => boolean} match
 */
async function mailed(address, what, match) {
  /** @type {Mail[]} */
  let mails = [];
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    mails = await mailsTo(address);
    const m = mails.find(match);
    if (m) {
      return m;
    }
  }
  assert.fail(`no mail to ${address} ${what} within 10 s; its mails: ${JSON.stringify(mails, null, 1)}`);
}

/**
 * The token of the link to page (`verify-email`, `reset-password`,
 * `change-email`) in the first mail to address that has one: only the
 * link counts, not the wording.
 * @param {string} address
 * @param {string} page
 */
async function tokenMailed(address, page) {
  const link = new RegExp(`/${page}\\?token=([A-Za-z0-9_-]+)`);
  const m = await mailed(address, `with a link to /${page}`, (m) => link.test(m.text));
  return link.exec(m.text)?.[1] ?? "";
}

/**
 * Checks the typed error of a link's token that no longer works: 400, an
 * RFC 9457 problem naming body.token, with the request id.
 * @param {string} what
 * @param {{ error?: Problem, response: Response }} result
 */
function assertInvalidLink(what, { error, response }) {
  assert.equal(response.status, 400, `${what}: ${JSON.stringify(error)}`);
  assert.ok(error, `${what}: no error body`);
  assert.equal(response.headers.get("Content-Type"), "application/problem+json", what);
  assert.equal(error.status, 400, what);
  assert.ok(error.type && error.title && error.detail, `${what}: ${JSON.stringify(error)}`);
  assert.equal(error.request_id, response.headers.get("X-Request-Id"), what);
  assert.ok(
    error.errors?.some((f) => f.field === "body.token"),
    `${what}: the problem names body.token: ${JSON.stringify(error)}`,
  );
}

describe("accounts that help themselves, against a live server", { skip: baseUrl ? false : "ROLEGATE_URL is not set" }, () => {
  test("sign-up, verification, a password reset and an email change, by the mails' tokens", async () => {
    const address = `sdk-signup-${randomUUID()}@example.com`;
    const moved = `sdk-moved-${randomUUID()}@example.org`;
    const password = "correct horse battery staple";
    const newPassword = "a much longer passphrase";
    const rg = createRolegateClient({ baseUrl });

    // Sign-up: 202, and a mail whose link proves the address.
    const up = await rg.POST("/signup", { body: { email: address, password } });
    assert.equal(up.response.status, 202, JSON.stringify(up.error));
    assert.ok(up.data?.message, "the 202 has a message");
    const verifyToken = await tokenMailed(address, "verify-email");
    const verified = await rg.POST("/email-verification/confirm", { body: { token: verifyToken } });
    assert.equal(verified.response.status, 204, JSON.stringify(verified.error));
    assertInvalidLink(
      "the verification token a second time",
      await rg.POST("/email-verification/confirm", { body: { token: verifyToken } }),
    );

    // The new account signs in, with the sign-up roles.
    const login = await rg.login(address, password);
    assert.equal(login.response.status, 200, JSON.stringify(login.error));
    const me = await rg.GET("/identify/me");
    assert.equal(me.response.status, 200, JSON.stringify(me.error));
    assert.equal(me.data?.kind, "user");
    assert.equal(me.data?.email, address);
    assert.deepEqual(me.data?.roles, ["user"]);
    // Verified already: the same 202, and no mail.
    const again = await rg.POST("/identify/me/email-verification");
    assert.equal(again.response.status, 202, JSON.stringify(again.error));
    assert.ok(again.data?.message);

    // A forgotten password: the reset ends the session, which the client
    // then finds its refresh refused for and forgets.
    const reset = await rg.POST("/password-reset", { body: { email: address } });
    assert.equal(reset.response.status, 202, JSON.stringify(reset.error));
    assert.ok(reset.data?.message);
    const resetToken = await tokenMailed(address, "reset-password");
    const done = await rg.POST("/password-reset/confirm", { body: { token: resetToken, new_password: newPassword } });
    assert.equal(done.response.status, 204, JSON.stringify(done.error));
    const ended = await rg.GET("/identify/me");
    assert.equal(ended.response.status, 401, "the session ended with the reset");
    assert.equal(rg.token, undefined, "the refused refresh dropped the tokens");
    const old = await rg.login(address, password);
    assert.equal(old.response.status, 400);
    assert.ok(old.error && "error" in old.error, JSON.stringify(old.error));
    assert.equal(old.error.error, "invalid_grant");
    const relogin = await rg.login(address, newPassword);
    assert.equal(relogin.response.status, 200, JSON.stringify(relogin.error));
    assertInvalidLink(
      "the reset token a second time",
      await rg.POST("/password-reset/confirm", { body: { token: resetToken, new_password: "yet another long passphrase" } }),
    );

    // A move to another address: the new one gets the link, the old one a
    // notice without it. Once confirmed, the access token (with the old
    // email) is refused; the client refreshes, and the retry sees the new
    // address.
    const change = await rg.POST("/identify/me/email", { body: { new_email: moved, password: newPassword } });
    assert.equal(change.response.status, 202, JSON.stringify(change.error));
    assert.ok(change.data?.message);
    const changeToken = await tokenMailed(moved, "change-email");
    const before = rg.token;
    const changed = await rg.POST("/email-change/confirm", { body: { token: changeToken } });
    assert.equal(changed.response.status, 204, JSON.stringify(changed.error));
    const after = await rg.GET("/identify/me");
    assert.equal(after.response.status, 200, JSON.stringify(after.error));
    assert.equal(after.data?.email, moved);
    assert.notEqual(rg.token, before, "refreshed after the change");
    assertInvalidLink("the email change token a second time", await rg.POST("/email-change/confirm", { body: { token: changeToken } }));
    const notice = await mailed(address, `naming ${moved}`, (m) => m.text.includes(moved));
    assert.doesNotMatch(notice.text, /token=/, "the notice to the old address has no link");
    // Mails to the old address: sign-up, reset and the notice; none for
    // the verification asked once verified.
    const all = await mailsTo(address);
    assert.equal(all.length, 3, JSON.stringify(all, null, 1));

    const oldAddress = await rg.login(address, newPassword);
    assert.equal(oldAddress.response.status, 400, "the old address signs in no more");
    const newAddress = await rg.login(moved, newPassword);
    assert.equal(newAddress.response.status, 200, JSON.stringify(newAddress.error));
    const movedMe = await rg.GET("/identify/me");
    assert.equal(movedMe.data?.email, moved);
    await rg.logout();
  });
});
