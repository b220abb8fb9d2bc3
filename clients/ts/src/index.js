// @ts-check
/**
 * The rolegate SDK: the types generated from api/openapi.yaml
 * (gen/ts/schema.d.ts), calls through openapi-fetch, and a session helper
 * that logs in, sends the access token as a bearer token on every request,
 * refreshes it when it is refused or about to expire, and logs out.
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
 * @property {(email: string, password: string) => Promise<TokenResult>} login
 *   Logs in with the OAuth2 password grant: POST /token, form-encoded, with
 *   the account's email as `username`. On success the client holds the
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
 * @property {(accessToken: string) => void} setToken
 *   Uses an access token obtained elsewhere, as if `login` had returned it
 *   without a refresh token: it is sent until it is refused, and never
 *   refreshed. A refresh token held is forgotten, not revoked.
 * @property {string | undefined} token The access token sent with
 *   requests, if logged in (read-only).
 */

/** @typedef {Client & Readonly<SessionMethods>} RolegateClient */

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
 * The form encoding of a token endpoint request; fields left undefined are
 * left out.
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
 * responses), plus `login`, `logout`, `setToken` and `token`.
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
   * Holds the tokens of a /token answer.
   * @param {Token} t
   */
  function hold(t) {
    generation++;
    token = t.access_token;
    refreshToken = t.refresh_token;
    const lifetime = t.expires_in * 1000;
    refreshAt = now() + lifetime - Math.min(REFRESH_BEFORE_EXPIRY_MS, lifetime / 2);
  }

  /** Forgets both tokens. */
  function forget() {
    generation++;
    token = refreshToken = refreshAt = undefined;
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
    const body = { grant_type: "refresh_token", refresh_token: refreshToken };
    refreshing = (async () => {
      try {
        const { data, response } = await client.POST("/token", { body, ...FORM_REQUEST });
        if (generation !== started) {
          // A login, setToken or logout came in between: its tokens stand.
          return false;
        }
        if (data) {
          hold(data);
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
  async function login(email, password) {
    const result = await client.POST("/token", {
      body: { grant_type: "password", username: email, password },
      ...FORM_REQUEST,
    });
    if (result.data) {
      hold(result.data);
    }
    return result;
  }

  /** @type {SessionMethods["logout"]} */
  async function logout() {
    const revoke = refreshToken ?? token;
    const hint = refreshToken !== undefined ? "refresh_token" : "access_token";
    forget();
    if (revoke === undefined) {
      return undefined;
    }
    return client.POST("/token/revoke", { body: { token: revoke, token_type_hint: hint }, ...FORM_REQUEST });
  }

  return {
    ...session,
    login,
    logout,
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
