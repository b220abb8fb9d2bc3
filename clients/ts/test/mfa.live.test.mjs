// @ts-check
// Second factors through the SDK against a live rolegate (sign-up open, as
// the Go harness sdk_test.go starts it): enrolling an authenticator app
// with the typed calls, then login, whose password step the server answers
// with mfa_required, completed by options.secondFactor with a code (or a
// recovery code). The test computes the app's codes itself (RFC 6238:
// HMAC-SHA-1, 30 s, 6 digits) from the secret the enrolment answers.
// Without ROLEGATE_URL these tests are skipped.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { createRolegateClient } from "../src/index.js";

const baseUrl = process.env.ROLEGATE_URL ?? "";

/**
 * The RFC 4648 base32 secret as bytes.
 * @param {string} secret
 */
function base32(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `base32 secret ${secret}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) {
    bytes.push(parseInt(bits.slice(i, i + 8), 2));
  }
  return Buffer.from(bytes);
}

/**
 * The code an authenticator app shows for secret at ms (RFC 6238).
 * @param {string} secret
 * @param {number} ms
 */
function totp(secret, ms) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 1000 / 30)));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

describe("second factors", { skip: baseUrl === "" ? "ROLEGATE_URL is not set" : false }, () => {
  test("enrol an authenticator app, then log in with its code or a recovery code", async () => {
    const email = `mfa-${randomUUID()}@example.com`;
    const password = "correct horse battery staple";
    const anon = createRolegateClient({ baseUrl });
    const signup = await anon.POST("/signup", { body: { email, password } });
    assert.equal(signup.response.status, 202);

    const rg = createRolegateClient({ baseUrl });
    assert.ok((await rg.login(email, password)).data, "a login before enrolment needs no second factor");
    const enrolment = await rg.POST("/identify/me/mfa/totp");
    assert.equal(enrolment.response.status, 200);
    const secret = enrolment.data?.secret ?? "";
    assert.match(enrolment.data?.otpauth_uri ?? "", /^otpauth:\/\/totp\//);
    const confirmed = await rg.POST("/identify/me/mfa/totp/confirm", { body: { code: totp(secret, Date.now()) } });
    assert.equal(confirmed.response.status, 200);
    const recovery = confirmed.data?.recovery_codes ?? [];
    assert.equal(recovery.length, 10);

    // The password alone is not enough now.
    const plain = createRolegateClient({ baseUrl });
    const refused = await plain.login(email, password);
    assert.equal(refused.response.status, 400);
    assert.ok(refused.error && "error" in refused.error && refused.error.error === "mfa_required" && refused.error.mfa_token);
    assert.equal(plain.token, undefined);

    // With secondFactor, login asks for the code (the next step's: the
    // current one confirmed the enrolment) and completes.
    let asked = 0;
    const strong = createRolegateClient({ baseUrl });
    const done = await strong.login(email, password, {
      secondFactor: async () => {
        asked++;
        return totp(secret, Date.now() + 30_000);
      },
    });
    assert.ok(done.data, `login with the code: ${JSON.stringify(done.error)}`);
    assert.equal(asked, 1);
    const claims = JSON.parse(Buffer.from(done.data.access_token.split(".")[1], "base64url").toString());
    assert.equal(claims.acr, "urn:rolegate:acr:mfa");
    const me = await strong.GET("/identify/me");
    assert.equal(me.data?.email, email);
    const factors = await strong.GET("/identify/me/mfa");
    assert.equal(factors.data?.totp.enrolled, true);

    // A wrong code is refused; a recovery code works once.
    const wrong = await createRolegateClient({ baseUrl }).login(email, password, { secondFactor: async () => "000000" });
    assert.ok(wrong.error && "error" in wrong.error && wrong.error.error === "invalid_grant");
    const byRecovery = await createRolegateClient({ baseUrl }).login(email, password, { secondFactor: async () => recovery[0] });
    assert.ok(byRecovery.data, "a recovery code");
    const again = await createRolegateClient({ baseUrl }).login(email, password, { secondFactor: async () => recovery[0] });
    assert.equal(again.response.status, 400, "a used recovery code");
  });
});
