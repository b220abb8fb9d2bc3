// Starts Swagger UI on rolegate's spec. This is a file of its own rather than
// an inline script so that the page's Content-Security-Policy can forbid
// inline scripts.
"use strict";

// The docs page's own client, built into rolegate: public (no secret), its
// one redirect URI this page's oauth2-redirect.html.
const docsClient = "rolegate-docs";

// Swagger UI names an OAuth 2.0 flow so; its OpenID Connect scheme's flows
// have the other spelling.
const codeFlows = ["authorizationCode", "authorization_code"];

// Swagger UI's password-flow form sends the OAuth2 client as an
// "Authorization: Basic" header unless the user picks "Request body", and no
// setting changes that default. A person's login needs no client: every
// password-flow login goes out with the client in the form body (RFC 6749
// section 2.3.1), which leaves out client_id while it is empty, and never
// with a secret, which rolegate would check. rolegate.css hides the password
// flow's client fields, which would otherwise claim a choice; machine
// clients have their own flow (OAuth2ClientCredentials) in the dialog.
//
// The authorization code flow is the docs client's, a public client: its
// code goes to /token with client_id, the PKCE verifier and no secret (a
// secret would be refused), and rolegate.css hides the secret's field.
function RequestBodyClientAuth() {
  return {
    statePlugins: {
      auth: {
        wrapActions: {
          authorizePassword: (authorizePassword) => (auth) =>
            authorizePassword(Object.assign({}, auth, { passwordType: "request-body", clientSecret: "" })),
          authorizeAccessCodeWithFormParams: (exchange) => (args) =>
            exchange(Object.assign({}, args, { auth: Object.assign({}, args.auth, { clientSecret: "" }) })),
        },
      },
    },
  };
}

// initOAuth's client and scopes are Swagger UI's defaults for every OAuth2
// flow of the dialog; they are the authorization code flows' alone here, so
// that the password and client credentials flows start empty, as before (the
// password flow would otherwise send the scopes, which name no role, and the
// client credentials flow would offer the docs client, which cannot use it).
function CodeFlowDefaults(system) {
  const React = system.React;
  return {
    wrapComponents: {
      oauth2: (Oauth2) => (props) => {
        if (codeFlows.includes(props.schema.get("flow"))) {
          return React.createElement(Oauth2, props);
        }
        const authSelectors = Object.assign({}, props.authSelectors, {
          getConfigs: () => {
            const configs = Object.assign({}, props.authSelectors.getConfigs());
            delete configs.clientId;
            delete configs.scopes;
            return configs;
          },
        });
        return React.createElement(Oauth2, Object.assign({}, props, { authSelectors }));
      },
    },
  };
}

const ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  tryItOutEnabled: true,
  // Only this page's settings apply: no ?url= or ?configUrl= from a link.
  queryConfigEnabled: false,
  // No badge that sends the spec to validator.swagger.io.
  validatorUrl: null,
  // The docs client's redirect URI is ROLEGATE_PUBLIC_URL's: this page's
  // origin when the page is reached there. Swagger UI's default would drop
  // the /docs of the page's path.
  oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
  plugins: [RequestBodyClientAuth, CodeFlowDefaults],
});

ui.initOAuth({
  clientId: docsClient,
  usePkceWithAuthorizationCodeGrant: true,
  scopes: "openid email",
});
