// @ts-check
// Sign-in from a browser (startSignIn, finishSignIn, logoutUrl, setSession)
// without a server: the authorization URL, PKCE, the state's one use, the
// id token's claims, the storage's clean-up. Where a test needs the token
// endpoint's or discovery's answer, a fetch passed in gives it, as the
// SDK's `fetch` option allows; signin.live.test.mjs runs the sign-in
// through rolegate's own /authorize, sign-in page and /token.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  SIGN_IN_TTL_MS,
  SignInError,
  checkIdToken,
  createRolegateClient,
  finishSignIn,
  logoutUrl,
  pkceChallenge,
  startSignIn,
} from "../src/index.js";

const baseUrl = "https://id.example.com";
const clientId = "notes-spa";
const redirectUri = "https://app.example.com/callback";

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

/** @param {unknown} v */
function b64url(v) {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

/**
 * An unsigned JWT with payload claims (the SDK does not look at the
 * signature).
 * @param {Record<string, unknown>} claims
 */
function jwt(claims) {
  return `${b64url({ alg: "RS256", kid: "k1" })}.${b64url(claims)}.c2lnbmF0dXJl`;
}

/**
 * A fetch that fails the test: nothing may be sent.
 * @param {Request} request
 * @returns {Promise<Response>}
 */
async function noFetch(request) {
  assert.fail(`nothing should be sent, but ${request.method} ${request.url} was`);
}

/**
 * A fetch that answers each request with answer(request), after reading
 * its form body, and keeps what it was sent.
 * @param {(r: { method: string, url: URL, form: URLSearchParams }) => Response} answer
 */
function answering(answer) {
  /** @type {{ method: string, url: URL, form: URLSearchParams }[]} */
  const sent = [];
  return {
    sent,
    /** @param {Request} request */
    fetch: async (request) => {
      const r = { method: request.method, url: new URL(request.url), form: new URLSearchParams(await request.text()) };
      sent.push(r);
      return answer(r);
    },
  };
}

/** @param {unknown} body @param {number} [status] */
function json(body, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** A sign-in started against baseUrl with a fresh storage. */
async function started(options = {}) {
  const storage = new MemoryStorage();
  const url = new URL(await startSignIn({ baseUrl, clientId, redirectUri, storage, ...options }));
  const state = url.searchParams.get("state") ?? "";
  const pending = JSON.parse(storage.getItem(`rolegate.signin.${state}`) ?? "null");
  return { storage, url, state, pending };
}

/**
 * The callback URL for a sign-in, with params.
 * @param {Record<string, string>} params
 */
function callback(params) {
  return `${redirectUri}?${new URLSearchParams(params)}`;
}

/**
 * Asserts that p rejects with a SignInError with the code.
 * @param {Promise<unknown> | (() => Promise<unknown>)} p
 * @param {string} code
 */
async function refused(p, code) {
  await assert.rejects(p, (/** @type {unknown} */ err) => {
    assert.ok(err instanceof SignInError, `want a SignInError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe("PKCE", () => {
  test("the challenge of RFC 7636 Appendix B's verifier", async () => {
    const challenge = await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    assert.equal(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    // The SHA-256 octets the appendix lists.
    assert.deepEqual(
      [...Buffer.from(challenge, "base64url")],
      [
        19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173, 109, 241, 68, 86, 110,
        225, 137, 74, 203, 112, 249, 195,
      ],
    );
  });
});

describe("startSignIn", () => {
  test("the authorization URL: code flow, PKCE S256, state and nonce, and what it stores", async () => {
    const { storage, url, state, pending } = await started();
    assert.equal(`${url.origin}${url.pathname}`, `${baseUrl}/authorize`);
    const p = url.searchParams;
    assert.deepEqual([...new Set(p.keys())].sort(), [
      "client_id",
      "code_challenge",
      "code_challenge_method",
      "nonce",
      "redirect_uri",
      "response_type",
      "scope",
      "state",
    ]);
    assert.ok([...new Set(p.keys())].every((k) => p.getAll(k).length === 1), "each parameter once");
    assert.equal(p.get("response_type"), "code");
    assert.equal(p.get("client_id"), clientId);
    assert.equal(p.get("redirect_uri"), redirectUri);
    assert.equal(p.get("scope"), "openid email");
    assert.equal(p.get("code_challenge_method"), "S256");

    // RFC 7636 §4.1: 43 to 128 unreserved characters.
    assert.match(pending.verifier, /^[A-Za-z0-9\-._~]{43,128}$/);
    assert.equal(p.get("code_challenge"), await pkceChallenge(pending.verifier));
    assert.match(state, /^[A-Za-z0-9_-]{43}$/);
    assert.match(p.get("nonce") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(
      { ...pending, created: typeof pending.created },
      {
        verifier: pending.verifier,
        state,
        nonce: p.get("nonce"),
        redirectUri,
        clientId,
        scope: "openid email",
        created: "number",
      },
    );
    assert.deepEqual([...storage.items.keys()], [`rolegate.signin.${state}`]);
  });

  test("every sign-in has a verifier, state and nonce of its own", async () => {
    const a = await started();
    const b = await started();
    for (const k of ["verifier", "state", "nonce"]) {
      assert.notEqual(a.pending[k], b.pending[k], k);
    }
    assert.notEqual(a.pending.verifier, a.pending.state);
    assert.notEqual(a.pending.state, a.pending.nonce);
  });

  test("scope, prompt, maxAge and extraParams", async () => {
    const { url } = await started({
      scope: "openid email offline_access",
      prompt: "login",
      maxAge: 0,
      extraParams: { login_hint: "alice@example.com" },
    });
    const p = url.searchParams;
    assert.equal(p.get("scope"), "openid email offline_access");
    assert.equal(p.get("prompt"), "login");
    assert.equal(p.get("max_age"), "0");
    assert.equal(p.get("login_hint"), "alice@example.com");
    // application/x-www-form-urlencoded, as RFC 6749 §4.1.1 asks.
    assert.match(url.search, /[?&]scope=openid\+email\+offline_access(&|$)/);
  });

  test("wrong options throw before anything is stored or sent", async () => {
    const storage = new MemoryStorage();
    const base = { baseUrl, clientId, redirectUri, storage, fetch: noFetch };
    await assert.rejects(startSignIn({ ...base, extraParams: { state: "mine" } }), TypeError);
    await assert.rejects(startSignIn({ ...base, extraParams: { code_challenge_method: "plain" } }), TypeError);
    await assert.rejects(startSignIn({ ...base, maxAge: 1.5 }), TypeError);
    await assert.rejects(startSignIn({ ...base, maxAge: -1 }), TypeError);
    await assert.rejects(startSignIn({ ...base, clientId: "" }), TypeError);
    await assert.rejects(startSignIn({ clientId, redirectUri, storage, fetch: noFetch }), TypeError);
    assert.equal(storage.length, 0);
    // Node.js has no sessionStorage, the default.
    await assert.rejects(startSignIn({ baseUrl, clientId, redirectUri }), /sessionStorage/);
  });

  test("with an issuer, the endpoint comes from its discovery document", async () => {
    const issuer = "https://login.example.com/tenant";
    const discovery = answering(({ url }) => {
      assert.equal(url.href, `${issuer}/.well-known/openid-configuration`);
      return json({ issuer, authorization_endpoint: "https://login.example.com/oauth/authorize?tenant=t1" });
    });
    const storage = new MemoryStorage();
    const url = new URL(await startSignIn({ issuer, clientId, redirectUri, storage, fetch: discovery.fetch }));
    assert.equal(discovery.sent.length, 1);
    assert.equal(`${url.origin}${url.pathname}`, "https://login.example.com/oauth/authorize");
    assert.equal(url.searchParams.get("tenant"), "t1", "the endpoint's own query is kept (RFC 6749 §3.1)");
    assert.equal(url.searchParams.get("response_type"), "code");
  });

  test("a discovery document of another issuer, or none, is refused", async () => {
    const issuer = "https://login.example.com";
    const storage = new MemoryStorage();
    const options = { issuer, clientId, redirectUri, storage };
    const other = answering(() => json({ issuer: "https://evil.example.com", authorization_endpoint: "https://evil.example.com/authorize" }));
    await refused(startSignIn({ ...options, fetch: other.fetch }), "invalid_discovery");
    const missing = answering(() => json({ error: "not_found" }, 404));
    await refused(startSignIn({ ...options, fetch: missing.fetch }), "invalid_discovery");
    const noEndpoint = answering(() => json({ issuer }));
    await refused(startSignIn({ ...options, fetch: noEndpoint.fetch }), "invalid_discovery");
    assert.equal(storage.length, 0);
  });

  test("sign-ins left unfinished for SIGN_IN_TTL_MS are removed; other keys stay", async () => {
    let clock = 1_000_000_000_000;
    const now = () => clock;
    const storage = new MemoryStorage();
    storage.setItem("theme", "dark");
    storage.setItem("rolegate.signin.garbage", "{not json");
    const old = new URL(await startSignIn({ baseUrl, clientId, redirectUri, storage, now })).searchParams.get("state");
    clock += SIGN_IN_TTL_MS - 1;
    const recent = new URL(await startSignIn({ baseUrl, clientId, redirectUri, storage, now })).searchParams.get("state");
    assert.deepEqual([...storage.items.keys()].sort(), ["rolegate.signin." + old, "rolegate.signin." + recent, "theme"].sort());
    clock += 1;
    const last = new URL(await startSignIn({ baseUrl, clientId, redirectUri, storage, now })).searchParams.get("state");
    assert.deepEqual([...storage.items.keys()].sort(), ["rolegate.signin." + last, "rolegate.signin." + recent, "theme"].sort());
  });
});

describe("finishSignIn: the callback's state", () => {
  test("no state, or one no sign-in started here: invalid_state, nothing sent", async () => {
    const { storage, state } = await started();
    const options = { baseUrl, storage, fetch: noFetch };
    await refused(finishSignIn(callback({ code: "c" }), options), "invalid_state");
    await refused(finishSignIn(callback({ code: "c", state: "" }), options), "invalid_state");
    await refused(finishSignIn(callback({ code: "c", state: `${state}x` }), options), "invalid_state");
    await refused(finishSignIn(callback({ code: "c", state }), { ...options, storage: new MemoryStorage() }), "invalid_state");
    assert.equal(storage.length, 1, "the sign-in still waits for its own callback");
  });

  test("an error response is the server's error; its state is used up", async () => {
    const { storage, state } = await started();
    const options = { baseUrl, storage, fetch: noFetch };
    const url = callback({
      error: "access_denied",
      error_description: "The person declined.",
      error_uri: "https://id.example.com/errors/access_denied",
      state,
    });
    await assert.rejects(finishSignIn(url, options), (err) => {
      assert.ok(err instanceof SignInError);
      assert.equal(err.code, "access_denied");
      assert.equal(err.description, "The person declined.");
      assert.equal(err.uri, "https://id.example.com/errors/access_denied");
      assert.equal(err.response, undefined);
      return true;
    });
    assert.equal(storage.length, 0);
    await refused(finishSignIn(url, options), "invalid_state");
    await refused(finishSignIn(callback({ code: "c", state }), options), "invalid_state");
  });

  test("a callback from another issuer (RFC 9207 iss) is refused, and uses up the state", async () => {
    const { storage, state } = await started();
    const options = { baseUrl, storage, fetch: noFetch };
    await refused(finishSignIn(callback({ code: "c", state, iss: "https://evil.example.com" }), options), "invalid_callback");
    assert.equal(storage.length, 0);
  });

  test("neither code nor error: invalid_callback", async () => {
    const { storage, state } = await started();
    await refused(finishSignIn(callback({ state }), { baseUrl, storage, fetch: noFetch }), "invalid_callback");
    assert.equal(storage.length, 0);
  });
});

describe("finishSignIn: the code exchange", () => {
  /**
   * A token endpoint that answers the exchange with tokens and an id token
   * of the given claims.
   * @param {Record<string, unknown>} [claims] over the right ones
   * @param {string} [nonce]
   */
  function tokenEndpoint(nonce, claims = {}) {
    return answering(() =>
      json({
        access_token: "at",
        token_type: "bearer",
        expires_in: 900,
        scope: "openid email",
        refresh_token: "rt",
        id_token: jwt({ iss: baseUrl, sub: "42", aud: clientId, nonce, exp: 2e9, iat: 1e9, ...claims }),
      }),
    );
  }

  test("POST /token with the code, redirect_uri, verifier and client_id; the id token's claims", async () => {
    const { storage, state, pending } = await started();
    const server = tokenEndpoint(pending.nonce);
    const signIn = await finishSignIn(callback({ code: "the-code", state, iss: baseUrl }), { baseUrl, storage, fetch: server.fetch });
    assert.equal(server.sent.length, 1);
    const [{ method, url, form }] = server.sent;
    assert.equal(method, "POST");
    assert.equal(url.href, `${baseUrl}/token`);
    assert.deepEqual(Object.fromEntries(form), {
      grant_type: "authorization_code",
      code: "the-code",
      redirect_uri: redirectUri,
      code_verifier: pending.verifier,
      client_id: clientId,
    });
    assert.equal(signIn.clientId, clientId);
    assert.equal(signIn.issuer, baseUrl);
    assert.equal(signIn.tokens.access_token, "at");
    assert.equal(signIn.tokens.refresh_token, "rt");
    assert.equal(signIn.claims?.sub, "42");
    assert.equal(signIn.claims?.nonce, pending.nonce);
    assert.equal(storage.length, 0);
    await refused(finishSignIn(callback({ code: "the-code", state }), { baseUrl, storage, fetch: noFetch }), "invalid_state");
  });

  test("an id token with another nonce, audience or issuer is refused", async () => {
    for (const [name, claims] of /** @type {[string, Record<string, unknown>][]} */ ([
      ["nonce", { nonce: "another" }],
      ["no nonce", { nonce: undefined }],
      ["aud", { aud: "other-app" }],
      ["iss", { iss: "https://evil.example.com" }],
    ])) {
      const { storage, state, pending } = await started();
      const server = tokenEndpoint(pending.nonce, claims);
      await refused(finishSignIn(callback({ code: "c", state }), { baseUrl, storage, fetch: server.fetch }), "invalid_id_token").catch(
        (err) => assert.fail(`${name}: ${err}`),
      );
    }
  });

  test("without an id token, the tokens alone", async () => {
    const { storage, state } = await started({ scope: "email" });
    const server = answering(() => json({ access_token: "at", token_type: "Bearer", expires_in: 900 }));
    const signIn = await finishSignIn(callback({ code: "c", state }), { baseUrl, storage, fetch: server.fetch });
    assert.equal(signIn.claims, undefined);
    assert.equal(signIn.tokens.scope, "email", "the scope requested, when the answer has none (RFC 6749 §5.1)");
  });

  test("the token endpoint's refusal is a SignInError with its code and response", async () => {
    const { storage, state } = await started();
    const server = answering(() => json({ error: "invalid_grant", error_description: "The code has expired." }, 400));
    await assert.rejects(finishSignIn(callback({ code: "c", state }), { baseUrl, storage, fetch: server.fetch }), (err) => {
      assert.ok(err instanceof SignInError);
      assert.equal(err.code, "invalid_grant");
      assert.equal(err.description, "The code has expired.");
      assert.equal(err.response?.status, 400);
      return true;
    });
    assert.equal(storage.length, 0);
  });

  test("a 200 that is no token answer: invalid_token_response", async () => {
    const { storage, state } = await started();
    const server = answering(() => json({ token_type: "bearer" }));
    await refused(finishSignIn(callback({ code: "c", state }), { baseUrl, storage, fetch: server.fetch }), "invalid_token_response");
  });
});

describe("checkIdToken", () => {
  const nonce = "n-0S6_WzA2Mj";
  const expected = { issuer: baseUrl, clientId, nonce };
  const good = { iss: baseUrl, sub: "42", aud: clientId, nonce, exp: 2e9, iat: 1e9 };

  test("the claims of a good one", () => {
    assert.deepEqual(checkIdToken(jwt(good), expected), good);
    assert.equal(checkIdToken(jwt({ ...good, aud: [clientId] }), expected).sub, "42");
    assert.equal(checkIdToken(jwt({ ...good, aud: [clientId, "api"], azp: clientId }), expected).sub, "42");
  });

  /** @type {[string, string][]} */
  const bad = [
    ["another issuer", jwt({ ...good, iss: "https://evil.example.com" })],
    ["the issuer with a trailing slash", jwt({ ...good, iss: `${baseUrl}/` })],
    ["no issuer", jwt({ ...good, iss: undefined })],
    ["another audience", jwt({ ...good, aud: "other-app" })],
    ["an audience list without the client", jwt({ ...good, aud: ["other-app", "api"] })],
    ["no audience", jwt({ ...good, aud: undefined })],
    ["several audiences without azp", jwt({ ...good, aud: [clientId, "api"] })],
    ["azp another client", jwt({ ...good, azp: "other-app" })],
    ["another nonce", jwt({ ...good, nonce: "replayed" })],
    ["no nonce", jwt({ ...good, nonce: undefined })],
    ["no sub", jwt({ ...good, sub: undefined })],
    ["not a JWT", "not-a-jwt"],
    ["a payload that is not JSON", `${b64url({})}.bm90IGpzb24.sig`],
    ["a payload that is not an object", `${b64url({})}.${b64url("x")}.sig`],
    ["an encrypted JWT (five parts)", `${b64url({})}.a.b.c.d`],
  ];
  for (const [name, token] of bad) {
    test(`refuses ${name}`, async () => {
      await refused(async () => checkIdToken(token, expected), "invalid_id_token");
    });
  }
});

describe("logoutUrl", () => {
  test("the end-session endpoint with the hint, where to go back to, and state", async () => {
    const url = new URL(
      await logoutUrl({
        baseUrl: `${baseUrl}/`,
        idTokenHint: "the.id.token",
        postLogoutRedirectUri: "https://app.example.com/",
        state: "s1",
        clientId,
        extraParams: { ui_locales: "de" },
      }),
    );
    assert.equal(`${url.origin}${url.pathname}`, `${baseUrl}/logout`);
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      id_token_hint: "the.id.token",
      post_logout_redirect_uri: "https://app.example.com/",
      state: "s1",
      client_id: clientId,
      ui_locales: "de",
    });
    assert.equal(await logoutUrl({ baseUrl }), `${baseUrl}/logout`);
  });

  test("with an issuer, discovery's end_session_endpoint", async () => {
    const discovery = answering(() => json({ issuer: baseUrl, end_session_endpoint: `${baseUrl}/session/end` }));
    assert.equal(
      await logoutUrl({ issuer: baseUrl, fetch: discovery.fetch, clientId }),
      `${baseUrl}/session/end?client_id=${clientId}`,
    );
    await assert.rejects(logoutUrl({ baseUrl, extraParams: { state: "x" } }), TypeError);
  });
});

describe("setSession: a sign-in's tokens in a client", () => {
  test("requests carry the access token; refreshes and the revocation name the client", async () => {
    let clock = 0;
    let issued = 0;
    const server = answering(({ url, form }) => {
      if (url.pathname === "/token") {
        issued++;
        return json({ access_token: `at${issued}`, token_type: "bearer", expires_in: 900, scope: "", refresh_token: `rt${issued}` });
      }
      if (url.pathname === "/token/revoke") {
        return json({});
      }
      return json({ kind: "user", roles: [], form: Object.fromEntries(form) });
    });
    /** @type {string[]} */
    const bearers = [];
    const rg = createRolegateClient({
      baseUrl,
      now: () => clock,
      fetch: async (request) => {
        bearers.push(request.headers.get("Authorization") ?? "");
        return server.fetch(request);
      },
    });
    rg.setSession({
      tokens: { access_token: "at0", token_type: "bearer", expires_in: 900, scope: "", refresh_token: "rt0" },
      clientId,
    });
    assert.equal(rg.token, "at0");
    await rg.GET("/identify/me");
    assert.deepEqual(bearers, ["Bearer at0"]);

    clock += 900_000; // past the access token's expiry: refresh first
    await rg.GET("/identify/me");
    assert.deepEqual(
      server.sent.map((r) => [r.url.pathname, Object.fromEntries(r.form)]),
      [
        ["/identify/me", {}],
        ["/token", { grant_type: "refresh_token", refresh_token: "rt0", client_id: clientId }],
        ["/identify/me", {}],
      ],
    );
    assert.equal(bearers.at(-1), "Bearer at1");

    await rg.logout();
    assert.deepEqual(Object.fromEntries(server.sent.at(-1)?.form ?? []), {
      token: "rt1",
      token_type_hint: "refresh_token",
      client_id: clientId,
    });
    assert.equal(rg.token, undefined);

    // A login afterwards is the first-party client's: no client_id.
    server.sent.length = 0;
    const login = await rg.login("alice@example.com", "pw");
    assert.ok(login.data);
    clock += 900_000;
    await rg.GET("/identify/me");
    assert.deepEqual(Object.fromEntries(server.sent[1].form), { grant_type: "refresh_token", refresh_token: "rt2" });
  });

  test("refuses what is not a sign-in's tokens", () => {
    const rg = createRolegateClient({ baseUrl });
    assert.throws(() => rg.setSession(/** @type {any} */ ({ clientId })), TypeError);
  });
});

// Never run: tsc (typecheck.test.mjs) fails if the sign-in's types loosen.
/** @param {import("../src/index.js").RolegateClient} rg */
export async function typeOnly(rg) {
  // @ts-expect-error: clientId is required
  await startSignIn({ baseUrl, redirectUri });
  // @ts-expect-error: maxAge is a number of seconds
  await startSignIn({ baseUrl, clientId, redirectUri, maxAge: "60" });
  const config = { baseUrl, clientId, redirectUri };
  await startSignIn(config);
  const signIn = await finishSignIn("https://app.example.com/callback?code=c&state=s", config);
  rg.setSession(signIn);
  const hint = signIn.tokens.id_token;
  /** @type {string | undefined} */
  const email = signIn.claims?.email;
  // @ts-expect-error: SignIn has no field named user
  void signIn.user;
  return logoutUrl({ ...config, idTokenHint: hint, postLogoutRedirectUri: email });
}
