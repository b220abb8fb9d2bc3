package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/golang-jwt/jwt/v5"
	middleware "github.com/oapi-codegen/nethttp-middleware"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/httpserve"
	"github.com/rolegate/rolegate/token"
)

// serve runs the bare or the textbook server on $BENCH_ADDR until killed.
func serve(kind string) error {
	var h http.Handler
	switch kind {
	case "bare":
		h = bare([]byte(os.Getenv("BENCH_BODY")))
	case "textbook":
		var err error
		if h, err = textbook([]byte(os.Getenv("BENCH_JWKS"))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-serve %q: want bare or textbook", kind)
	}
	// The same server settings as rolegate's.
	srv := httpserve.New(h, httpserve.API, nil)
	srv.Addr = os.Getenv("BENCH_ADDR")
	return srv.ListenAndServe()
}

// bare answers every request with body, as JSON: the floor of what any
// stack on net/http can do.
func bare(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// textbook is GET /identify/me as the oapi-codegen documentation builds a
// secured API: the generated strict server behind nethttp-middleware's
// OapiRequestValidator (kin-openapi's openapi3filter over the whole spec),
// whose AuthenticationFunc verifies the bearer token with golang-jwt against
// the JWKS and checks the operation's scopes against the token's roles.
func textbook(jwks []byte) (http.Handler, error) {
	doc, err := openapi3.NewLoader().LoadFromData(rolegate.OpenAPIYAML)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []token.JWK `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("BENCH_JWKS: %w", err)
	}
	public := map[string]any{}
	for _, j := range set.Keys {
		k, err := token.ParseJWK(j)
		if err != nil {
			return nil, err
		}
		public[k.ID] = k.Public
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA", "ES256"}), jwt.WithIssuer(issuer),
		jwt.WithAudience(cfg.JWTAudience), jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second))
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := public[kid]; ok {
			return k, nil
		}
		return nil, errors.New("unknown kid")
	}
	authenticate := func(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
		raw, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return errors.New("no bearer token")
		}
		var claims textbookClaims
		if _, err := parser.ParseWithClaims(raw, &claims, keyfunc); err != nil {
			return err
		}
		for _, scope := range in.Scopes {
			if !slices.Contains(claims.Roles, scope) {
				return errors.New("missing scope " + scope)
			}
		}
		*in.RequestValidationInput.Request.Context().Value(claimsKey{}).(*textbookClaims) = claims
		return nil
	}
	validate := middleware.OapiRequestValidatorWithOptions(doc, &middleware.Options{
		DoNotValidateServers: true,
		Options:              openapi3filter.Options{AuthenticationFunc: authenticate},
	})
	h := api.HandlerWithOptions(api.NewStrictHandler(textbookServer{}, nil), api.StdHTTPServerOptions{})
	inner := validate(h)
	// A place for the validator's AuthenticationFunc to leave the claims.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, new(textbookClaims))))
	}), nil
}

type claimsKey struct{}

type textbookClaims struct {
	jwt.RegisteredClaims
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// textbookServer implements getMe; the other operations are never called.
type textbookServer struct{ api.StrictServerInterface }

func (textbookServer) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	c := ctx.Value(claimsKey{}).(*textbookClaims)
	var id int64
	if _, err := fmt.Sscan(c.Subject, &id); err != nil {
		return nil, err
	}
	return api.GetMe200JSONResponse{Kind: api.IdentityKindUser, Id: &id, Email: &c.Email, Roles: c.Roles}, nil
}
