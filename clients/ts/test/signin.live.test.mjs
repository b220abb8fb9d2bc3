// @ts-check
// Sign-in from a browser against a live rolegate: startSignIn's URL,
// followed as a browser would (rolegate's sign-in page, its form, the
// redirect back), finishSignIn's code exchange, and the session in a
// client: GET /identify/me, a refresh, and logout. Node.js stands in for
// the browser, with a fetch that keeps rolegate's cookies (the CSRF
// cookie the form's token is bound to, the sign-in cookie), since Node's
// own keeps none. The Go harness (sdk_test.go) starts the server, with
// its URL as the issuer, and sets, besides ROLEGATE_URL:
//   ROLEGATE_TEST_SIGNIN_EMAIL, ROLEGATE_TEST_SIGNIN_PASSWORD  an account with role user
//   ROLEGATE_TEST_CLIENT_ID     a public client registered with
//   ROLEGATE_TEST_REDIRECT_URI  a loopback redirect URI, where nothing listens
// Without ROLEGATE_URL these tests are skipped.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createRolegateClient, finishSignIn, startSignIn } from "../src/index.js";

const baseUrl = process.env.ROLEGATE_URL ?? "";

/** @param {string} name */
function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (ROLEGATE_URL is)`);
  }
  return v;
}

/** A Web Storage in memory, as sessionStorage is in a browser. */
class MemoryStorage {
  /** @type {Map<string, string>} */
  items = new Map();
  get length() {
    return this.items.size;
  }
  /** @param {number} i */
  key(i) {
    return [...this.items.keys()][i] ?? null;
  }
  /** @param {string} k */
  getItem(k) {
    return this.items.get(k) ?? null;
  }
  /** @param {string} k @param {string} v */
  setItem(k, v) {
    this.items.set(k, v);
  }
  /** @param {string} k */
  removeItem(k) {
    this.items.delete(k);
  }
}

/**
 * A browser, as far as the sign-in needs one: a fetch that keeps the
 * cookies servers set (per origin, by name; `Max-Age` of 0 or less
 * removes one), sends them back to their origin, and follows no redirect,
 * so that the test sees where the browser would go.
 */
function browser() {
  /** @type {Map<string, Map<string, string>>} origin → name → value */
  const jar = new Map();
  return {
    jar,
    /**
     * @param {string} url
     * @param {RequestInit} [init]
     */
    async fetch(url, init = {}) {
      const { origin } = new URL(url);
      const headers = new Headers(init.headers);
      const cookies = jar.get(origin);
      if (cookies?.size) {
        headers.set("Cookie", [...cookies].map(([k, v]) => `${k}=${v}`).join("; "));
      }
      const response = await fetch(url, { ...init, headers, redirect: "manual" });
      for (const line of response.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(";").map((s) => s.trim());
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq);
        const maxAge = attributes.find((a) => /^max-age=/i.test(a));
        const kept = jar.get(origin) ?? new Map();
        if (maxAge !== undefined && Number(maxAge.slice("max-age=".length)) <= 0) {
          kept.delete(name);
        } else {
          kept.set(name, pair.slice(eq + 1));
        }
        jar.set(origin, kept);
      }
      return response;
    },
  };
}

/**
 * The text of an HTML attribute value: its character references decoded
 * (html/template writes `+` as `&#43;`, for one).
 * @param {string} s
 */
function unescapeHTML(s) {
  /** @type {Record<string, string>} */
  const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (ref, body) => {
    if (body[0] === "#") {
      return String.fromCodePoint(body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : Number(body.slice(1)));
    }
    return named[body.toLowerCase()] ?? ref;
  });
}

/**
 * The attributes of an HTML start tag, e.g. `<input type="hidden" name="a" value="b">`.
 * @param {string} tag
 * @returns {Record<string, string>}
 */
function attributes(tag) {
  /** @type {Record<string, string>} */
  const attrs = {};
  for (const m of tag.matchAll(/\s([a-z-]+)(?:="([^"]*)")?/gi)) {
    attrs[m[1].toLowerCase()] = unescapeHTML(m[2] ?? "");
  }
  return attrs;
}

/**
 * The sign-in page's form as a person's browser would submit it: where it
 * posts, its method, its hidden fields (the authorization request and the
 * CSRF token), and the names of its email and password inputs.
 * @param {string} html
 * @param {string} pageUrl for a relative action
 */
function signInForm(html, pageUrl) {
  const forms = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)];
  assert.equal(forms.length, 1, `one form on the sign-in page:\n${html}`);
  const form = forms[0][0];
  const open = attributes(/^<form\b[^>]*>/i.exec(form)?.[0] ?? "");
  const fields = new URLSearchParams();
  /** @type {Record<string, string>} input type → name */
  const inputs = {};
  for (const [tag] of form.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(tag);
    if (a.type === "hidden") {
      fields.append(a.name, a.value ?? "");
    } else {
      inputs[a.type] = a.name;
    }
  }
  return { action: new URL(open.action ?? "", pageUrl).href, method: (open.method ?? "get").toUpperCase(), fields, inputs };
}

/**
 * The payload of a JWT, unverified.
 * @param {string} jwt
 * @returns {Record<string, unknown>}
 */
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8"));
}

describe("sign-in from a browser against a live server", { skip: baseUrl ? false : "ROLEGATE_URL is not set" }, () => {
  test("startSignIn, the sign-in page, finishSignIn, then the session: GET /identify/me, a refresh, logout", async () => {
    const clientId = env("ROLEGATE_TEST_CLIENT_ID");
    const redirectUri = env("ROLEGATE_TEST_REDIRECT_URI");
    const email = env("ROLEGATE_TEST_SIGNIN_EMAIL");
    const storage = new MemoryStorage();

    const authorizationUrl = await startSignIn({ baseUrl, clientId, redirectUri, storage });
    assert.ok(authorizationUrl.startsWith(`${baseUrl}/authorize?`), authorizationUrl);
    assert.equal(storage.length, 1);

    // The browser goes there: rolegate's sign-in page, and its CSRF cookie.
    const b = browser();
    const page = await b.fetch(authorizationUrl);
    const html = await page.text();
    assert.equal(page.status, 200, html);
    assert.match(page.headers.get("Content-Type") ?? "", /^text\/html/);
    assert.equal(b.jar.get(new URL(baseUrl).origin)?.size, 1, "the CSRF cookie");

    // The person fills in the form; it posts the authorization request
    // back, with the CSRF token, and rolegate sends the browser back to the
    // app with a code.
    const form = signInForm(html, page.url || authorizationUrl);
    assert.equal(form.method, "POST");
    assert.equal(form.action, `${baseUrl}/sign-in`);
    assert.equal(form.fields.get("client_id"), clientId);
    assert.equal(form.fields.get("redirect_uri"), redirectUri);
    assert.equal(form.fields.get("state"), new URL(authorizationUrl).searchParams.get("state"));
    assert.ok(form.fields.get("csrf_token"), "the form carries a CSRF token");
    assert.ok(form.inputs.email && form.inputs.password, `the form asks for an email and a password: ${JSON.stringify(form.inputs)}`);
    form.fields.set(form.inputs.email, email);
    form.fields.set(form.inputs.password, env("ROLEGATE_TEST_SIGNIN_PASSWORD"));
    const posted = await b.fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: form.fields.toString(),
    });
    const callbackUrl = posted.headers.get("Location") ?? "";
    assert.equal(posted.status, 303, await posted.text());
    assert.equal(b.jar.get(new URL(baseUrl).origin)?.size, 2, "the CSRF cookie and the sign-in cookie");
    assert.ok(callbackUrl.startsWith(`${redirectUri}?`), `redirected to ${callbackUrl}, not back to ${redirectUri}`);
    assert.equal(new URL(callbackUrl).searchParams.get("iss"), baseUrl, "RFC 9207: the callback names the issuer");

    // Back at the app: the code for tokens, once.
    const signIn = await finishSignIn(callbackUrl, { baseUrl, storage });
    assert.equal(storage.length, 0, "the sign-in's state is used up");
    assert.equal(signIn.clientId, clientId);
    assert.equal(signIn.issuer, baseUrl);
    assert.equal(signIn.claims?.email, email);
    assert.ok(signIn.tokens.id_token);
    assert.ok(signIn.tokens.refresh_token, "the code's session can be refreshed");
    assert.equal(claimsOf(signIn.tokens.access_token).client_id, clientId);

    // The session in a client: the access token, then a refresh when it
    // is about to expire (a clock moved on), which names the public client.
    let clock = Date.now();
    /** @type {Record<string, string>[]} */
    const refreshes = [];
    const rg = createRolegateClient({
      baseUrl,
      now: () => clock,
      fetch: async (request) => {
        if (new URL(request.url).pathname === "/token") {
          refreshes.push(Object.fromEntries(new URLSearchParams(await request.clone().text())));
        }
        return fetch(request);
      },
    });
    rg.setSession(signIn);
    const me = await rg.GET("/identify/me");
    assert.equal(me.response.status, 200, JSON.stringify(me.error));
    assert.equal(me.data?.email, email);
    assert.equal(String(me.data?.id), signIn.claims?.sub);
    assert.deepEqual(me.data?.roles, ["user"]);
    assert.equal(refreshes.length, 0);

    clock += signIn.tokens.expires_in * 1000;
    const again = await rg.GET("/identify/me");
    assert.equal(again.response.status, 200, JSON.stringify(again.error));
    assert.equal(again.data?.email, email);
    assert.deepEqual(refreshes, [{ grant_type: "refresh_token", refresh_token: signIn.tokens.refresh_token, client_id: clientId }]);
    const refreshed = rg.token ?? "";
    assert.notEqual(refreshed, signIn.tokens.access_token);
    assert.equal(claimsOf(refreshed).client_id, clientId);

    // logout ends the session by the public client: its access token stops.
    const out = await rg.logout();
    assert.equal(out?.response.status, 200);
    const after = await fetch(`${baseUrl}/identify/me`, { headers: { Authorization: `Bearer ${refreshed}` } });
    assert.equal(after.status, 401);
  });
});
