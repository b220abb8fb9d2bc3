// @ts-check
/**
 * The rolegate SDK: the types generated from api/openapi.yaml
 * (gen/ts/schema.d.ts), calls through openapi-fetch, and a session helper
 * that logs in, sends the access token as a bearer token on every request,
 * refreshes it when it is refused or about to expire, and logs out; and
 * sign-in from a browser through rolegate's authorization endpoint
 * (`startSignIn`, `finishSignIn`, `logoutUrl`), whose session the client
 * then keeps alive the same way (`setSession`).
 *
 * `./schema.js` is gen/ts/schema.d.ts: tsconfig.json's rootDirs find it
 * there while developing, and the package ships a copy next to its
 * declarations (scripts/pack.mjs). Only types come from it, so nothing
 * imports it at run time.
 *
 * @module
 */
import createClient from "openapi-fetch";

/** @typedef {import("./schema.js").paths} paths */
/** @typedef {import("./schema.js").components} components */
/** @typedef {import("./schema.js").operations} operations */
/** @typedef {components["schemas"]["Token"]} Token */
/** @typedef {components["schemas"]["OAuthError"]} OAuthError RFC 6749 §5.2, the body of /token's 400. */
/** @typedef {components["schemas"]["Problem"]} Problem RFC 9457, every other error body. */
/** @typedef {components["schemas"]["Identity"]} Identity */
/** @typedef {components["schemas"]["Note"]} Note */
/** @typedef {import("openapi-fetch").Client<paths>} Client */
/** @typedef {import("openapi-fetch").ClientOptions} ClientOptions */

/** @typedef {`${string}/${string}`} MediaType openapi-fetch's default media type parameter. */
/** @typedef {import("openapi-fetch").FetchResponse<paths["/token"]["post"], {}, MediaType>} TokenResult the result of POST /token */
/** @typedef {import("openapi-fetch").FetchResponse<paths["/token/revoke"]["post"], {}, MediaType>} RevokeResult the result of POST /token/revoke */

/**
 * @typedef {object} SessionOptions
 * @property {() => number} [now] the clock that decides when the access
 *   token is about to expire, in milliseconds since the epoch like
 *   `Date.now` (the default); tests pass a fake one.
 */

/**
 * @typedef {object} SessionMethods what {@link createRolegateClient} adds
 *   to openapi-fetch's client.
 * @property {(email: string, password: string, options?: LoginOptions) => Promise<TokenResult>} login
 *   Logs in with the OAuth2 password grant: POST /token, form-encoded, with
 *   the account's email as `username`. For an account with a second
 *   factor the server answers 400 `mfa_required` with an `mfa_token`:
 *   with `options.secondFactor`, login asks it for the code (the
 *   authenticator app's 6 digits, or a recovery code) and completes the
 *   login with `grant_type=urn:rolegate:grant-type:mfa`; without it, that
 *   answer is the result. On success the client holds the
 *   session's access token and refresh token: every later request carries
 *   `Authorization: Bearer <access token>`, and the session is refreshed as
 *   {@link createRolegateClient} says. On failure the previous tokens, if
 *   any, are kept and `error` is the RFC 6749 body (400, e.g.
 *   `{ error: "invalid_grant" }`) or an RFC 9457 problem (413, 503 with
 *   `Retry-After`). A session held before is not ended: `logout` first for
 *   that.
 * @property {() => Promise<RevokeResult | undefined>} logout
 *   Logs out: forgets both tokens at once, so that later requests go out
 *   without Authorization, then ends the session on the server with
 *   POST /token/revoke (RFC 7009) and its refresh token (or the access
 *   token, after `setToken`), which stops every access token and refresh
 *   token of the session at once. Resolves to the revocation's result (200
 *   whether or not the token was still valid), or `undefined` when no token
 *   was held. Like every call it rejects on a network failure: the tokens
 *   are forgotten all the same, but the session lives on until it expires.
 * @property {(session: { tokens: Token, clientId?: string }) => void} setSession
 *   Holds the tokens of a sign-in from a browser ({@link finishSignIn}'s
 *   result) as `login` holds its own: every later request carries the
 *   access token, and the session is refreshed as
 *   {@link createRolegateClient} says, each refresh with
 *   `client_id=<clientId>` (a public client names itself and sends no
 *   secret, RFC 6749 §3.2.1), and so is the revocation of `logout`
 *   (RFC 7009 §2.1). Without a refresh token in `tokens` the access token is
 *   sent until it expires and never refreshed. `logout` ends the session of
 *   these tokens, not the browser's sign-in at rolegate: send the browser
 *   to {@link logoutUrl} for that. Tokens held before are forgotten, not
 *   revoked.
 * @property {(accessToken: string) => void} setToken
 *   Uses an access token obtained elsewhere, as if `login` had returned it
 *   without a refresh token: it is sent until it is refused, and never
 *   refreshed. A refresh token held is forgotten, not revoked.
 * @property {string | undefined} token The access token sent with
 *   requests, if logged in (read-only).
 */

/** @typedef {Client & Readonly<SessionMethods>} RolegateClient */

/**
 * @typedef {object} LoginOptions
 * @property {() => Promise<string>} [secondFactor] asked for the second
 *   factor when the account has one: resolves to the authenticator app's
 *   6-digit code, or a recovery code (anything else).
 */

/** The media type of the token endpoint's requests (RFC 6749 §4.3.2, §6; RFC 7009 §2.1). */
const FORM = "application/x-www-form-urlencoded";

/**
 * The longest time before its expiry at which the access token is
 * refreshed instead of sent; a token that lives less than twice as long is
 * refreshed at half its lifetime.
 */
export const REFRESH_BEFORE_EXPIRY_MS = 30_000;

/** The HTTP methods of openapi-fetch's client, each wrapped by the session. */
const METHODS = /** @type {const} */ (["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"]);

/**
 * The endpoints of the session itself: they never carry the access token
 * and are never refreshed and retried.
 * @param {string} schemaPath
 */
function isTokenEndpoint(schemaPath) {
  return schemaPath === "/token" || schemaPath === "/token/revoke";
}

/**
 * Whether a 401 refuses the token itself (RFC 6750 §3.1 `invalid_token`:
 * expired, revoked, the session ended, the account's roles changed), which
 * a refresh can cure, rather than its absence.
 * @param {Response} response
 */
function refusesToken(response) {
  return response.status === 401 && /\berror="invalid_token"/.test(response.headers.get("WWW-Authenticate") ?? "");
}

/**
 * The client's baseUrl as the start of its requests' URLs: absolute (a
 * relative one against the page's location, in a browser), without a
 * trailing slash.
 * @param {string} baseUrl
 */
function serverURL(baseUrl) {
  let url = baseUrl;
  try {
    url = new URL(baseUrl, /** @type {{ location?: { href: string } }} */ (globalThis).location?.href).href;
  } catch {
    // Not a URL: openapi-fetch will say so at the first request.
  }
  return url.replace(/\/+$/, "");
}

/**
 * The form encoding of a token endpoint request (or of a URL's query);
 * fields left undefined are left out.
 * @param {Record<string, string | undefined>} body
 */
function formBody(body) {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) {
    if (v !== undefined) {
      f.set(k, v);
    }
  }
  return f.toString();
}

/** The options of every request to the token endpoints, besides the body. */
const FORM_REQUEST = { headers: { "Content-Type": FORM }, bodySerializer: formBody };

/**
 * Creates a rolegate client: the openapi-fetch client for the spec's paths
 * (GET, POST, PATCH, DELETE, ... with typed paths, params, bodies and
 * responses), plus `login`, `logout`, `setSession`, `setToken` and
 * `token`.
 *
 * Every call resolves to openapi-fetch's `{ data, error, response }`: on a
 * 2xx `data` is the parsed body; otherwise `error` is the server's error body
 * as sent — an RFC 6749 `{ error, error_description }` from /token, an
 * RFC 9457 problem (`type`, `title`, `status`, `request_id`, `errors`, ...)
 * from everything else — and `response` is the fetch Response, for the
 * status and headers such as `WWW-Authenticate` or `Location`. Network
 * failures reject.
 *
 * The access token goes only to requests under `baseUrl`: a call with a
 * `baseUrl` of its own elsewhere goes out without it, and a call with an
 * `Authorization` header of its own keeps that header.
 *
 * After `login` the client keeps the session alive by itself, with the
 * refresh token (`grant_type=refresh_token`, which rotates it):
 *
 * - before a request, when the access token expires within
 *   {@link REFRESH_BEFORE_EXPIRY_MS} (or half its lifetime, if shorter) of
 *   the time it was received, it refreshes first;
 * - when a request sent with its access token gets 401 with
 *   `error="invalid_token"` (the session ended on the server, or the
 *   account's roles changed), it refreshes and sends the request once more,
 *   through the same call, so the body is serialised again and every
 *   middleware sees the retry. A 401 for another reason, a request that set
 *   its own `Authorization` header, and /token and /token/revoke themselves
 *   are never retried.
 *
 * Requests that need a refresh at the same time share one: a burst of calls
 * rotates the refresh token once. When the refresh is refused (400, e.g.
 * `invalid_grant`: the session ended or expired), the client forgets both
 * tokens, as `logout` does but without calling the server: the call
 * resolves to its original 401 (or, refreshing before expiry, goes out
 * without a token and gets a 401 of its own), and so do later ones until
 * the next `login`. When the refresh fails otherwise (503, say), the tokens
 * are kept for the next call to try again and the call resolves to its 401.
 * A network failure of the refresh rejects the call that needed it, except
 * before expiry: then the request goes out with the old token, which still
 * works.
 *
 * A body that can be sent only once (a `ReadableStream` from a custom
 * `bodySerializer`) cannot be retried: the retry rejects.
 *
 * @param {ClientOptions & { baseUrl: string } & SessionOptions} options the
 *   server's root URL, e.g. `http://127.0.0.1:8080`; `now`, the clock (see
 *   {@link SessionOptions}); any other openapi-fetch option passes through
 *   (`fetch`, `headers`, ...).
 * @returns {RolegateClient}
 */
export function createRolegateClient(options) {
  const { now = Date.now, ...clientOptions } = options;
  /** @type {Client} */
  const client = createClient(clientOptions);
  const home = serverURL(options.baseUrl);

  /** @type {string | undefined} the access token */
  let token;
  /** @type {string | undefined} */
  let refreshToken;
  /**
   * @type {string | undefined} the public client the tokens were issued
   *   to (setSession), named in refreshes and the revocation; none for a
   *   login's
   */
  let clientId;
  /** @type {number | undefined} when, on `now`'s clock, to refresh before sending */
  let refreshAt;
  /**
   * Counts login, setToken and logout, so that a refresh that was in flight
   * meanwhile leaves the tokens they set alone.
   */
  let generation = 0;
  /** @type {Promise<boolean> | undefined} the refresh in flight, shared by every caller */
  let refreshing;

  /** @type {WeakMap<Request, string>} a request the middleware authorised → the access token it sent */
  const authorised = new WeakMap();
  /** @type {WeakMap<Response, string>} a response → the access token its request carried */
  const sentWith = new WeakMap();

  client.use({
    onRequest({ request, schemaPath }) {
      // The token endpoints carry no token, a request that sets its own
      // Authorization header keeps it, and a request to another server
      // (a per-request baseUrl) never sees it.
      if (
        token !== undefined &&
        !isTokenEndpoint(schemaPath) &&
        !request.headers.has("Authorization") &&
        (request.url === home || request.url.startsWith(`${home}/`))
      ) {
        request.headers.set("Authorization", `Bearer ${token}`);
        authorised.set(request, token);
      }
      return undefined;
    },
    // Registered first, this middleware sees the response last, as the
    // caller will.
    onResponse({ request, response }) {
      // A middleware after this one may have replaced the request with a
      // copy, headers and all.
      const sent =
        authorised.get(request) ??
        (token !== undefined && request.headers.get("Authorization") === `Bearer ${token}` ? token : undefined);
      if (sent !== undefined) {
        sentWith.set(response, sent);
      }
      return undefined;
    },
  });

  /**
   * Holds the tokens of a /token answer, issued to the public client
   * client (or to none, for a login).
   * @param {Token} t
   * @param {string | undefined} client
   */
  function hold(t, client) {
    generation++;
    token = t.access_token;
    refreshToken = t.refresh_token;
    clientId = client;
    const lifetime = t.expires_in * 1000;
    refreshAt = now() + lifetime - Math.min(REFRESH_BEFORE_EXPIRY_MS, lifetime / 2);
  }

  /** Forgets both tokens. */
  function forget() {
    generation++;
    token = refreshToken = refreshAt = clientId = undefined;
  }

  /**
   * Exchanges the refresh token for new tokens, once for every caller that
   * needs it: a caller whose access token was refused after another caller
   * already replaced it only retries.
   *
   * @param {string | undefined} stale the access token refused or expiring
   * @returns {Promise<boolean>} whether an access token other than stale is
   *   now held; rejects on a network failure
   */
  function refresh(stale) {
    if (refreshing !== undefined) {
      return refreshing;
    }
    if (token !== undefined && token !== stale) {
      return Promise.resolve(true);
    }
    if (refreshToken === undefined) {
      return Promise.resolve(false);
    }
    const started = generation;
    const body = { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId };
    refreshing = (async () => {
      try {
        const { data, response } = await client.POST("/token", { body, ...FORM_REQUEST });
        if (generation !== started) {
          // A login, setToken or logout came in between: its tokens stand.
          return false;
        }
        if (data) {
          hold(data, clientId);
          return true;
        }
        if (response.status === 400) {
          forget();
        }
        return false;
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  }

  /**
   * Sends a request through send, within the session: refreshing first
   * when the access token is about to expire (or a refresh is in flight),
   * and once more after a 401 `invalid_token` for the token it carried.
   *
   * @template {{ response: Response }} R
   * @param {string} schemaPath
   * @param {() => Promise<R>} send
   * @returns {Promise<R>}
   */
  async function withSession(schemaPath, send) {
    if (isTokenEndpoint(schemaPath)) {
      return send();
    }
    if (refreshing !== undefined || (refreshToken !== undefined && refreshAt !== undefined && now() >= refreshAt)) {
      try {
        await refresh(token);
      } catch {
        // The access token has a little life left: the request goes out
        // with it, and reports a network failure of its own if there is one.
      }
    }
    const result = await send();
    const sent = sentWith.get(result.response);
    if (sent === undefined || !refusesToken(result.response) || !(await refresh(sent))) {
      return result;
    }
    return send();
  }

  /** @type {Client} */
  const session = { ...client };
  for (const method of METHODS) {
    const call = /** @type {(url: any, init: any) => Promise<any>} */ (client[method]);
    session[method] = /** @type {any} */ (
      /** @param {any} url @param {any} init */
      (url, init) => withSession(url, () => call(url, init))
    );
  }
  session.request = /** @type {any} */ (
    /** @param {any} method @param {any} url @param {any} init */
    (method, url, init) => withSession(url, () => client.request(method, url, init))
  );

  /** @type {SessionMethods["login"]} */
  async function login(email, password, options = {}) {
    let result = await client.POST("/token", {
      body: { grant_type: "password", username: email, password },
      ...FORM_REQUEST,
    });
    const refusal = result.error && "error" in result.error ? result.error : undefined;
    const mfaToken = refusal?.error === "mfa_required" ? refusal.mfa_token : undefined;
    if (mfaToken !== undefined && options.secondFactor) {
      const code = (await options.secondFactor()).trim();
      const digits = code.replaceAll(" ", "");
      const second = /^[0-9]{6}$/.test(digits) ? { otp: digits } : { recovery_code: code };
      result = await client.POST("/token", {
        body: { grant_type: "urn:rolegate:grant-type:mfa", mfa_token: mfaToken, ...second },
        ...FORM_REQUEST,
      });
    }
    if (result.data) {
      hold(result.data, undefined);
    }
    return result;
  }

  /** @type {SessionMethods["logout"]} */
  async function logout() {
    const revoke = refreshToken ?? token;
    const hint = refreshToken !== undefined ? "refresh_token" : "access_token";
    const client_id = clientId;
    forget();
    if (revoke === undefined) {
      return undefined;
    }
    return client.POST("/token/revoke", { body: { token: revoke, token_type_hint: hint, client_id }, ...FORM_REQUEST });
  }

  /** @type {SessionMethods["setSession"]} */
  function setSession({ tokens, clientId: client }) {
    if (typeof tokens?.access_token !== "string") {
      throw new TypeError("rolegate: setSession needs the tokens of a sign-in, with an access_token");
    }
    hold(tokens, client);
  }

  return {
    ...session,
    login,
    logout,
    setSession,
    /** @param {string} accessToken */
    setToken(accessToken) {
      forget();
      token = accessToken;
    },
    get token() {
      return token;
    },
  };
}

// Sign-in from a browser: OAuth 2.1's authorization code flow with PKCE
// (RFC 7636) and OpenID Connect, for a public client (a page's script,
// which can keep no secret). Only what browsers and Node.js 20 both have:
// globalThis.crypto, fetch, URL and URLSearchParams.

/**
 * @typedef {object} ProviderOptions which rolegate to sign in with, and
 *   how to reach it. One of `baseUrl` and `issuer` is needed.
 * @property {string} [baseUrl] the server's public URL (ROLEGATE_PUBLIC_URL),
 *   as for {@link createRolegateClient}: the endpoints are /authorize,
 *   /token and /logout under it, and unless `issuer` is given, it is the
 *   issuer (without a trailing slash) that id tokens must name.
 * @property {string} [issuer] the issuer, exactly as id tokens name it in
 *   `iss`. Without `baseUrl`, the endpoints are read from its discovery
 *   document, `<issuer>/.well-known/openid-configuration`, whose own
 *   `issuer` must be the same; give both when the issuer is not the public
 *   URL (ROLEGATE_JWT_ISSUER).
 * @property {(request: Request) => Promise<Response>} [fetch] what sends
 *   the requests (discovery and the code exchange), each as a Request, as
 *   {@link createRolegateClient}'s `fetch` option: `globalThis.fetch` by
 *   default; a test passes one that keeps cookies.
 */

/**
 * @typedef {object} SignInStorage where a sign-in waits between
 *   {@link startSignIn} and {@link finishSignIn}, across the redirect to
 *   rolegate and back: `sessionStorage` (the default) or `localStorage` in
 *   a browser, or anything with the same methods. With `length` and `key`
 *   as well (Web Storage has them), startSignIn removes sign-ins that were
 *   started over {@link SIGN_IN_TTL_MS} before and never finished.
 * @property {(key: string) => string | null} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} removeItem
 * @property {number} [length]
 * @property {(index: number) => string | null} [key]
 */

/**
 * @typedef {object} SignInRequest what to ask the authorization endpoint for.
 * @property {string} clientId the client's id, a public client registered
 *   at rolegate with this redirectUri.
 * @property {string} redirectUri where rolegate sends the browser back to,
 *   exactly as registered for the client: the page that calls
 *   {@link finishSignIn}.
 * @property {string} [scope] space-separated, `"openid email"` by default:
 *   `openid` for an id token, `email`, `profile`, `offline_access`, and
 *   role names to narrow the access token's roles.
 * @property {SignInStorage} [storage] `globalThis.sessionStorage` by
 *   default; in Node.js, which has none, pass one.
 * @property {string} [prompt] `login` to have the person enter the password
 *   even though the browser is signed in, `none` to get the error
 *   `login_required` instead of the sign-in page.
 * @property {number} [maxAge] seconds since the person last entered the
 *   password beyond which they must enter it again (`max_age`).
 * @property {Record<string, string>} [extraParams] further query
 *   parameters, e.g. `login_hint`; none of those the request sets itself.
 * @property {() => number} [now] the clock (`Date.now` by default) that
 *   dates the sign-in for the clean-up of {@link SignInStorage}.
 */

/** @typedef {ProviderOptions & SignInRequest} SignInOptions the options of {@link startSignIn} */
/** @typedef {ProviderOptions & { storage?: SignInStorage }} CallbackOptions the options of {@link finishSignIn}: a SignInOptions will do. */

/**
 * @typedef {object} LogoutRequest what to ask the end-session endpoint for.
 * @property {string} [idTokenHint] the id token of the sign-in
 *   (`tokens.id_token`; an expired one will do): whose browser session to
 *   end. Without it rolegate asks the person to confirm.
 * @property {string} [postLogoutRedirectUri] where rolegate sends the
 *   browser afterwards, registered for the client exactly.
 * @property {string} [state] sent back with that redirect.
 * @property {string} [clientId] the client asking, for when there is no
 *   idTokenHint.
 * @property {Record<string, string>} [extraParams] further query parameters,
 *   e.g. `ui_locales`.
 */

/** @typedef {ProviderOptions & LogoutRequest} LogoutOptions the options of {@link logoutUrl} */

/**
 * @typedef {Token & { id_token?: string }} SignInTokens the token
 *   endpoint's answer to the code exchange: {@link Token} and, for scope
 *   `openid`, the id token.
 */

/**
 * @typedef {{
 *   iss: string,
 *   sub: string,
 *   aud: string | string[],
 *   exp?: number,
 *   iat?: number,
 *   nonce?: string,
 *   azp?: string,
 *   auth_time?: number,
 *   sid?: string,
 *   email?: string,
 *   email_verified?: boolean,
 * } & Record<string, unknown>} IdTokenClaims an id token's payload (OpenID
 *   Connect Core §2).
 */

/**
 * @typedef {object} SignIn a finished sign-in, {@link finishSignIn}'s
 *   result; hand it to a client's `setSession`.
 * @property {SignInTokens} tokens the token endpoint's answer.
 * @property {IdTokenClaims | undefined} claims the id token's payload,
 *   whose `iss`, `aud` and `nonce` were checked; undefined without an id
 *   token.
 * @property {string} clientId the client the tokens were issued to.
 * @property {string} issuer the issuer the id token was checked against.
 */

/**
 * SignInError is how {@link finishSignIn} (and discovery, for
 * {@link startSignIn} and {@link logoutUrl}) refuse: `code` is the
 * authorization endpoint's or the token endpoint's RFC 6749 error code
 * (`access_denied`, `login_required`, `invalid_grant`, ...), or one of the
 * SDK's own:
 *
 * - `invalid_state`: the callback has no `state`, or one that no sign-in
 *   in the storage started, or that was used already;
 * - `invalid_callback`: the callback has neither `code` nor `error`, or an
 *   `iss` (RFC 9207) that is not the issuer's;
 * - `invalid_token_response`: the token endpoint's 200 is no token answer;
 * - `invalid_id_token`: the id token is not a JWT, or its `iss`, `aud`,
 *   `azp` or `nonce` is not this sign-in's;
 * - `invalid_discovery`: the discovery document could not be read, names
 *   another issuer, or lacks the endpoint;
 * - `temporarily_unavailable` and `unexpected_response`: the token
 *   endpoint answered 503, or an error without an RFC 6749 body.
 *
 * `description` is the server's `error_description`, or the SDK's
 * explanation: plain text, for a log or a page's text, never its markup.
 */
export class SignInError extends Error {
  /**
   * @param {string} code
   * @param {string} [description]
   * @param {{ uri?: string, response?: Response }} [details] the
   *   `error_uri`; the token endpoint's response, for its status and
   *   headers (`Retry-After`)
   */
  constructor(code, description, details = {}) {
    super(description ? `rolegate sign-in: ${code}: ${description}` : `rolegate sign-in: ${code}`);
    this.name = "SignInError";
    /** @type {string} the RFC 6749 error code, or one of the SDK's */
    this.code = code;
    /** @type {string | undefined} */
    this.description = description;
    /** @type {string | undefined} the server's `error_uri` */
    this.uri = details.uri;
    /** @type {Response | undefined} the token endpoint's or discovery's response, body read */
    this.response = details.response;
  }
}

/**
 * How long a sign-in started and never finished stays in its storage:
 * {@link startSignIn} removes older ones. A callback that comes later is
 * refused with `invalid_state`; the app starts a new sign-in, which a
 * browser still signed in at rolegate passes at once.
 */
export const SIGN_IN_TTL_MS = 60 * 60_000;

/** The storage keys of sign-ins under way: the prefix, then the state. */
const SIGN_IN_KEY = "rolegate.signin.";

/** The parameters of an authorization request that startSignIn sets itself. */
const SIGN_IN_PARAMS = new Set([
  "response_type",
  "client_id",
  "redirect_uri",
  "scope",
  "state",
  "nonce",
  "code_challenge",
  "code_challenge_method",
  "prompt",
  "max_age",
]);

/** The parameters of an end-session request that logoutUrl sets itself. */
const LOGOUT_PARAMS = new Set(["id_token_hint", "post_logout_redirect_uri", "state", "client_id"]);

/**
 * @typedef {object} PendingSignIn a sign-in under way, as its storage holds
 *   it (JSON) under its state.
 * @property {string} verifier the PKCE code_verifier
 * @property {string} state
 * @property {string} nonce
 * @property {string} redirectUri
 * @property {string} clientId
 * @property {string} scope as requested, for a token answer without one
 *   (RFC 6749 §5.1)
 * @property {number} created when it started, on its `now` clock
 */

/**
 * The pending sign-in stored as text, or undefined for none or for text
 * that is not one.
 * @param {string | null} text
 * @returns {PendingSignIn | undefined}
 */
function pendingSignIn(text) {
  if (text === null) {
    return undefined;
  }
  try {
    const p = JSON.parse(text);
    if (
      typeof p === "object" &&
      p !== null &&
      ["verifier", "state", "nonce", "redirectUri", "clientId", "scope"].every((k) => typeof p[k] === "string") &&
      typeof p.created === "number"
    ) {
      return p;
    }
  } catch {
    // Not JSON: not a sign-in of ours.
  }
  return undefined;
}

/**
 * The storage given, or the page's sessionStorage.
 * @param {SignInStorage | undefined} storage
 * @returns {SignInStorage}
 */
function signInStorage(storage) {
  const s = storage ?? /** @type {{ sessionStorage?: SignInStorage }} */ (globalThis).sessionStorage;
  if (s === undefined) {
    throw new TypeError("rolegate sign-in: there is no sessionStorage here (Node.js?): pass options.storage");
  }
  return s;
}

/**
 * Removes the sign-ins of storage that started SIGN_IN_TTL_MS or more
 * before at, or that it cannot read; a storage that cannot list its keys
 * keeps them.
 * @param {SignInStorage} storage
 * @param {number} at
 */
function pruneSignIns(storage, at) {
  if (typeof storage.key !== "function" || typeof storage.length !== "number") {
    return;
  }
  /** @type {string[]} */
  const stale = [];
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (key?.startsWith(SIGN_IN_KEY)) {
      const p = pendingSignIn(storage.getItem(key));
      if (p === undefined || !(at - p.created < SIGN_IN_TTL_MS)) {
        stale.push(key);
      }
    }
  }
  for (const key of stale) {
    storage.removeItem(key);
  }
}

/**
 * The bytes in base64url without padding (RFC 4648 §5, RFC 7636
 * Appendix A).
 * @param {Uint8Array} bytes
 */
function base64url(bytes) {
  let binary = "";
  for (const b of bytes) {
    binary += String.fromCharCode(b);
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The WebCrypto of browsers and Node.js, which browsers give scripts only
 * in a secure context.
 */
function webCrypto() {
  const c = globalThis.crypto;
  if (c?.subtle === undefined) {
    throw new TypeError(
      "rolegate sign-in: crypto.subtle is missing: browsers have it only on https pages (and http://localhost)",
    );
  }
  return c;
}

/**
 * 256 random bits in base64url: 43 characters of RFC 7636's unreserved
 * alphabet, a code_verifier as §4.1 recommends it, and a state or nonce
 * no one can guess.
 */
function randomToken() {
  return base64url(webCrypto().getRandomValues(new Uint8Array(32)));
}

/**
 * Returns the PKCE code_challenge of a code_verifier for the method S256:
 * BASE64URL(SHA-256(ASCII(verifier))) (RFC 7636 §4.2).
 * @param {string} verifier
 * @returns {Promise<string>}
 */
export async function pkceChallenge(verifier) {
  const digest = await webCrypto().subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * The issuer that id tokens must name.
 * @param {ProviderOptions} options
 */
function issuerOf(options) {
  if (options.issuer !== undefined) {
    return options.issuer;
  }
  if (options.baseUrl !== undefined) {
    return serverURL(options.baseUrl);
  }
  throw new TypeError("rolegate sign-in: options.baseUrl or options.issuer is needed");
}

/**
 * The URL of one of the provider's endpoints: under baseUrl, or from the
 * issuer's discovery document (OpenID Connect Discovery 1.0 §4).
 * @param {ProviderOptions} options
 * @param {"authorization_endpoint" | "token_endpoint" | "end_session_endpoint"} name
 * @returns {Promise<string>}
 */
async function endpoint(options, name) {
  if (options.baseUrl !== undefined) {
    const path = { authorization_endpoint: "/authorize", token_endpoint: "/token", end_session_endpoint: "/logout" }[name];
    return `${serverURL(options.baseUrl)}${path}`;
  }
  const issuer = issuerOf(options);
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const send = options.fetch ?? globalThis.fetch;
  const response = await send(new Request(url, { headers: { Accept: "application/json" } }));
  /** @type {any} */
  let meta;
  try {
    meta = await response.json();
  } catch {
    meta = undefined;
  }
  if (!response.ok || typeof meta !== "object" || meta === null) {
    throw new SignInError("invalid_discovery", `GET ${url} answered ${response.status}, not the provider's metadata`, { response });
  }
  if (meta.issuer !== issuer) {
    throw new SignInError("invalid_discovery", `${url} is the metadata of issuer ${JSON.stringify(meta.issuer)}, not ${JSON.stringify(issuer)}`, { response });
  }
  if (typeof meta[name] !== "string") {
    throw new SignInError("invalid_discovery", `${url} names no ${name}`, { response });
  }
  return meta[name];
}

/**
 * Checks that the options are enough to find the provider and that extra
 * sets none of the parameters in reserved, before anything is sent.
 * @param {ProviderOptions} options
 * @param {Record<string, string>} extra
 * @param {Set<string>} reserved
 */
function checkRequest(options, extra, reserved) {
  issuerOf(options);
  for (const k of Object.keys(extra)) {
    if (reserved.has(k)) {
      throw new TypeError(`rolegate sign-in: extraParams may not set ${k}: it has an option of its own, or the SDK sets it`);
    }
  }
}

/**
 * url with params added to its query, after any it had (an endpoint URL
 * may have some: RFC 6749 §3.1), and extra after them.
 * @param {string} url
 * @param {Record<string, string | undefined>} params
 * @param {Record<string, string>} extra
 */
function withQuery(url, params, extra) {
  const u = new URL(url);
  for (const [k, v] of [...Object.entries(params), ...Object.entries(extra)]) {
    if (v !== undefined) {
      u.searchParams.set(k, v);
    }
  }
  return u.href;
}

/**
 * Starts a sign-in from a browser: returns the URL of rolegate's
 * authorization endpoint to send the browser to (`location.assign(url)`),
 * where the person signs in on the hosted page, and from where the browser
 * comes back to `redirectUri` with a code, for {@link finishSignIn}.
 *
 * The request is the authorization code flow with PKCE (RFC 7636, method
 * S256) and OpenID Connect: a fresh code_verifier, state and nonce, each
 * 256 bits from `crypto.getRandomValues`, go into `storage` under the
 * state, with the client id and redirectUri, until the callback uses them
 * up; sign-ins left there for over {@link SIGN_IN_TTL_MS} are removed. The
 * URL carries `response_type=code`, `client_id`, `redirect_uri`, `scope`,
 * `state`, `nonce`, `code_challenge`, `code_challenge_method=S256`,
 * `prompt` and `max_age` if given, then `extraParams`.
 *
 * With `baseUrl` the endpoint is `<baseUrl>/authorize`; with `issuer` alone
 * it is the discovery document's `authorization_endpoint`, and a document
 * that cannot be read rejects with a {@link SignInError}. Options that are
 * wrong (no baseUrl nor issuer, an extraParams key the request sets, a
 * maxAge that is not a whole number of seconds, no storage) throw a
 * TypeError, and so does a page without `crypto.subtle` (plain http
 * outside localhost).
 *
 * @param {SignInOptions} options
 * @returns {Promise<string>} the authorization URL
 */
export async function startSignIn(options) {
  const { clientId, redirectUri, scope = "openid email", prompt, maxAge, extraParams = {}, now = Date.now } = options;
  if (typeof clientId !== "string" || clientId === "" || typeof redirectUri !== "string" || redirectUri === "") {
    throw new TypeError("rolegate sign-in: options.clientId and options.redirectUri are needed");
  }
  if (maxAge !== undefined && !(Number.isSafeInteger(maxAge) && maxAge >= 0)) {
    throw new TypeError(`rolegate sign-in: maxAge is ${maxAge}, not a whole number of seconds`);
  }
  const storage = signInStorage(options.storage);
  checkRequest(options, extraParams, SIGN_IN_PARAMS);
  const authorize = await endpoint(options, "authorization_endpoint");

  const verifier = randomToken();
  const state = randomToken();
  const nonce = randomToken();
  const url = withQuery(
    authorize,
    {
      response_type: "code",
      client_id: clientId,
      redirect_uri: redirectUri,
      scope,
      state,
      nonce,
      code_challenge: await pkceChallenge(verifier),
      code_challenge_method: "S256",
      prompt,
      max_age: maxAge === undefined ? undefined : String(maxAge),
    },
    extraParams,
  );

  const created = now();
  pruneSignIns(storage, created);
  /** @type {PendingSignIn} */
  const pending = { verifier, state, nonce, redirectUri, clientId, scope, created };
  storage.setItem(SIGN_IN_KEY + state, JSON.stringify(pending));
  return url;
}

/**
 * The payload of a JWS in compact serialisation, or undefined if jwt is not
 * one with a JSON object for payload. The signature is not looked at.
 * @param {string} jwt
 * @returns {Record<string, unknown> | undefined}
 */
function jwtPayload(jwt) {
  const parts = jwt.split(".");
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) {
    return undefined;
  }
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (typeof payload === "object" && payload !== null && !Array.isArray(payload)) {
      return payload;
    }
  } catch {
    // Not base64url, UTF-8 or JSON.
  }
  return undefined;
}

/**
 * Checks the claims of an id token that the token endpoint answered this
 * client's code exchange with, and returns its payload: `iss` must be
 * `issuer`, `aud` must be or contain `clientId`, `azp` (required when there
 * are several audiences) must be `clientId`, and `nonce` must be the one
 * the sign-in sent (OpenID Connect Core §3.1.3.7). Throws a
 * {@link SignInError} with code `invalid_id_token` otherwise.
 *
 * The signature is not verified, nor `exp`: a public client that got the
 * id token straight from the token endpoint, over TLS, in exchange for its
 * code and PKCE verifier, has it from the issuer itself (§3.1.3.7 allows
 * TLS server validation in place of the signature), and the browser's clock
 * is not the server's. An id token from anywhere else — a URL, another
 * party — proves nothing without verifying its signature against the
 * issuer's keys.
 *
 * @param {string} idToken
 * @param {{ issuer: string, clientId: string, nonce: string }} expected
 * @returns {IdTokenClaims}
 */
export function checkIdToken(idToken, expected) {
  const claims = jwtPayload(idToken);
  if (claims === undefined) {
    throw new SignInError("invalid_id_token", "The id token is not a JWT with a JSON payload.");
  }
  /** @param {string} why */
  const refuse = (why) => new SignInError("invalid_id_token", why);
  if (claims.iss !== expected.issuer) {
    throw refuse(`The id token's iss is ${JSON.stringify(claims.iss)}, not ${JSON.stringify(expected.issuer)}.`);
  }
  const aud = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.includes(expected.clientId)) {
    throw refuse(`The id token's aud is ${JSON.stringify(claims.aud)}, which does not name ${JSON.stringify(expected.clientId)}.`);
  }
  if ((aud.length > 1 || claims.azp !== undefined) && claims.azp !== expected.clientId) {
    throw refuse(`The id token's azp is ${JSON.stringify(claims.azp)}, not ${JSON.stringify(expected.clientId)}.`);
  }
  if (claims.nonce !== expected.nonce) {
    throw refuse("The id token's nonce is not the one this sign-in sent.");
  }
  if (typeof claims.sub !== "string") {
    throw refuse("The id token has no sub.");
  }
  return /** @type {IdTokenClaims} */ (claims);
}

/**
 * The tokens of the token endpoint's answer to the code exchange, or the
 * SignInError it stands for.
 * @param {Response} response
 * @param {string} scope the scope requested
 * @returns {Promise<SignInTokens>}
 */
async function exchanged(response, scope) {
  /** @type {any} */
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  /** @param {unknown} v */
  const text = (v) => (typeof v === "string" ? v : undefined);
  if (!response.ok) {
    if (typeof body?.error === "string") {
      throw new SignInError(body.error, text(body.error_description), { uri: text(body.error_uri), response });
    }
    const code = response.status === 503 ? "temporarily_unavailable" : "unexpected_response";
    throw new SignInError(code, text(body?.detail) ?? text(body?.title) ?? `The token endpoint answered ${response.status}.`, {
      response,
    });
  }
  if (
    typeof body?.access_token !== "string" ||
    typeof body.token_type !== "string" ||
    body.token_type.toLowerCase() !== "bearer" ||
    typeof body.expires_in !== "number" ||
    !["string", "undefined"].includes(typeof body.refresh_token) ||
    !["string", "undefined"].includes(typeof body.id_token) ||
    !["string", "undefined"].includes(typeof body.scope)
  ) {
    throw new SignInError("invalid_token_response", "The token endpoint's 200 is not a bearer token answer.", { response });
  }
  return { ...body, scope: body.scope ?? scope };
}

/**
 * Finishes a sign-in where rolegate sent the browser back: on the page at
 * the sign-in's redirectUri, with its URL (`location.href`). Resolves to
 * the {@link SignIn}, whose tokens a client takes with `setSession`; the
 * page should then take the code and state out of its address
 * (`history.replaceState`).
 *
 * In order:
 *
 * 1. The callback's `state` must be that of a sign-in {@link startSignIn}
 *    put in `storage`; it is removed there at once, whatever follows, so a
 *    callback works once. No state, an unknown one or one used already is
 *    `invalid_state`.
 * 2. An `iss` parameter (RFC 9207), if any, must be the issuer.
 * 3. `error` (with `error_description`, `error_uri`) rejects with that
 *    code, e.g. `access_denied`, or `login_required` after `prompt=none`.
 * 4. The `code` is exchanged at the token endpoint (`<baseUrl>/token`, or
 *    discovery's `token_endpoint`): POST, form-encoded,
 *    `grant_type=authorization_code`, `code`, `redirect_uri`,
 *    `code_verifier` and `client_id`, and no secret. An RFC 6749 error
 *    rejects with its code (`invalid_grant`: the code expired or was used).
 * 5. An id token in the answer must pass {@link checkIdToken} (`iss`, `aud`,
 *    `azp`, `nonce`); its signature is not verified, as it comes straight
 *    from the token endpoint over TLS.
 *
 * Refusals reject with a {@link SignInError}; a network failure rejects as
 * `fetch` does.
 *
 * @param {string | URL} callbackUrl the URL the browser came back to
 * @param {CallbackOptions} options the provider, as for startSignIn, and
 *   the same storage
 * @returns {Promise<SignIn>}
 */
export async function finishSignIn(callbackUrl, options) {
  const storage = signInStorage(options.storage);
  const issuer = issuerOf(options);
  const params = new URL(callbackUrl).searchParams;
  const state = params.get("state");
  if (!state) {
    throw new SignInError("invalid_state", "The callback has no state: it answers no sign-in started here.");
  }
  const key = SIGN_IN_KEY + state;
  const pending = pendingSignIn(storage.getItem(key));
  storage.removeItem(key);
  if (pending === undefined || pending.state !== state) {
    throw new SignInError("invalid_state", "The callback's state is of no sign-in started here, or it was used already.");
  }
  const iss = params.get("iss");
  if (iss !== null && iss !== issuer) {
    throw new SignInError("invalid_callback", `The callback comes from issuer ${JSON.stringify(iss)}, not ${JSON.stringify(issuer)}.`);
  }
  const error = params.get("error");
  if (error !== null) {
    throw new SignInError(error, params.get("error_description") ?? undefined, { uri: params.get("error_uri") ?? undefined });
  }
  const code = params.get("code");
  if (!code) {
    throw new SignInError("invalid_callback", "The callback has neither a code nor an error.");
  }

  const send = options.fetch ?? globalThis.fetch;
  const response = await send(
    new Request(await endpoint(options, "token_endpoint"), {
      method: "POST",
      headers: { "Content-Type": FORM, Accept: "application/json" },
      body: formBody({
        grant_type: "authorization_code",
        code,
        redirect_uri: pending.redirectUri,
        code_verifier: pending.verifier,
        client_id: pending.clientId,
      }),
    }),
  );
  const tokens = await exchanged(response, pending.scope);
  const claims =
    tokens.id_token === undefined
      ? undefined
      : checkIdToken(tokens.id_token, { issuer, clientId: pending.clientId, nonce: pending.nonce });
  return { tokens, claims, clientId: pending.clientId, issuer };
}

/**
 * Returns the URL of rolegate's end-session endpoint (OpenID Connect
 * RP-Initiated Logout 1.0) to send the browser to, so that it is signed out
 * of rolegate: `<baseUrl>/logout`, or discovery's `end_session_endpoint`,
 * with `id_token_hint`, `post_logout_redirect_uri`, `state` and `client_id`
 * as given, then `extraParams`. rolegate ends the hint's browser session and
 * every session started under it. A client's `logout` ends only its own
 * session's tokens; call it first, then send the browser here.
 *
 * @param {LogoutOptions} options
 * @returns {Promise<string>}
 */
export async function logoutUrl(options) {
  const extraParams = options.extraParams ?? {};
  checkRequest(options, extraParams, LOGOUT_PARAMS);
  return withQuery(
    await endpoint(options, "end_session_endpoint"),
    {
      id_token_hint: options.idTokenHint,
      post_logout_redirect_uri: options.postLogoutRedirectUri,
      state: options.state,
      client_id: options.clientId,
    },
    extraParams,
  );
}
