// Starts Swagger UI on rolegate's spec. This is a file of its own rather than
// an inline script so that the page's Content-Security-Policy can forbid
// inline scripts.
"use strict";

// Swagger UI's password-flow form sends the OAuth2 client as an
// "Authorization: Basic" header unless the user picks "Request body", and no
// setting changes that default. A person's login needs no client: every
// password-flow login goes out with the client in the form body (RFC 6749
// section 2.3.1), which leaves out client_id while it is empty, and never
// with a secret, which rolegate would check. rolegate.css hides the password
// flow's client fields, which would otherwise claim a choice; machine
// clients have their own flow (OAuth2ClientCredentials) in the dialog.
function RequestBodyClientAuth() {
  return {
    statePlugins: {
      auth: {
        wrapActions: {
          authorizePassword: (authorizePassword) => (auth) =>
            authorizePassword(Object.assign({}, auth, { passwordType: "request-body", clientSecret: "" })),
        },
      },
    },
  };
}

SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  tryItOutEnabled: true,
  // Only this page's settings apply: no ?url= or ?configUrl= from a link.
  queryConfigEnabled: false,
  // No badge that sends the spec to validator.swagger.io.
  validatorUrl: null,
  plugins: [RequestBodyClientAuth],
});
