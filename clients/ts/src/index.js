// @ts-check
/**
 * The rolegate SDK: the types generated from api/openapi.yaml
 * (gen/ts/schema.d.ts), calls through openapi-fetch, and a login helper that
 * holds the access token and sends it as a bearer token on every request.
 *
 * @module
 */
import createClient from "openapi-fetch";

/** @typedef {import("../../../gen/ts/schema.js").paths} paths */
/** @typedef {import("../../../gen/ts/schema.js").components} components */
/** @typedef {import("../../../gen/ts/schema.js").operations} operations */
/** @typedef {components["schemas"]["Token"]} Token */
/** @typedef {components["schemas"]["OAuthError"]} OAuthError RFC 6749 §5.2, the body of /token's 400. */
/** @typedef {components["schemas"]["Problem"]} Problem RFC 9457, every other error body. */
/** @typedef {components["schemas"]["Identity"]} Identity */
/** @typedef {components["schemas"]["Note"]} Note */
/** @typedef {import("openapi-fetch").Client<paths>} Client */
/** @typedef {import("openapi-fetch").ClientOptions} ClientOptions */

/** The media type of the OAuth2 password grant (RFC 6749 §4.3.2). */
const FORM = "application/x-www-form-urlencoded";

/**
 * Creates a rolegate client: the openapi-fetch client for the spec's paths
 * (GET, POST, PATCH, DELETE, ... with typed paths, params, bodies and
 * responses), plus `login`, `logout` and `token`.
 *
 * Every call resolves to openapi-fetch's `{ data, error, response }`: on a
 * 2xx `data` is the parsed body; otherwise `error` is the server's error body
 * as sent — an RFC 6749 `{ error, error_description }` from /token, an
 * RFC 9457 problem (`type`, `title`, `status`, `request_id`, `errors`, ...)
 * from everything else — and `response` is the fetch Response, for the
 * status and headers such as `WWW-Authenticate` or `Location`. Network
 * failures reject.
 *
 * @param {ClientOptions & { baseUrl: string }} options the server's root URL,
 *   e.g. `http://127.0.0.1:8080`; any other openapi-fetch option passes through
 *   (`fetch`, `headers`, ...).
 */
export function createRolegateClient(options) {
  /** @type {Client} */
  const client = createClient(options);
  /** @type {string | undefined} */
  let token;

  client.use({
    onRequest({ request, schemaPath }) {
      // The login request carries no token, and a request that sets its own
      // Authorization header keeps it.
      if (token !== undefined && schemaPath !== "/token" && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${token}`);
      }
      return undefined;
    },
  });

  /**
   * Logs in with the OAuth2 password grant: POST /token, form-encoded. On
   * success every later request carries `Authorization: Bearer <token>`; on
   * failure the previous token, if any, is kept and `error` is the RFC 6749
   * body (400, e.g. `{ error: "invalid_grant" }`) or an RFC 9457 problem
   * (413, 503 with `Retry-After`).
   *
   * @param {string} email the account's email (the grant's `username`)
   * @param {string} password
   */
  async function login(email, password) {
    const result = await client.POST("/token", {
      body: { grant_type: "password", username: email, password },
      headers: { "Content-Type": FORM },
      bodySerializer: (body) => new URLSearchParams(/** @type {Record<string, string>} */ (body)).toString(),
    });
    if (result.data) {
      token = result.data.access_token;
    }
    return result;
  }

  return {
    ...client,
    login,
    /** Forgets the token: later requests go out without Authorization. */
    logout() {
      token = undefined;
    },
    /**
     * Uses a token obtained elsewhere, as if `login` had returned it.
     * @param {string} accessToken
     */
    setToken(accessToken) {
      token = accessToken;
    },
    /** The access token sent with requests, if logged in. */
    get token() {
      return token;
    },
  };
}

/** @typedef {ReturnType<typeof createRolegateClient>} RolegateClient */
