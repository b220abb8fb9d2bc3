package handlers

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/token"
)

// Discovery serves what other services need to trust rolegate's tokens:
// the public keys (RFC 7517) and the authorization server metadata (RFC
// 8414). It belongs to the meta tag.
type Discovery struct {
	// Tokens are the access tokens, whose keys the JWKS publishes (none
	// with HS256).
	Tokens *token.Manager
	// IDTokens are the id tokens, whose keys the JWKS publishes beside
	// the access tokens'; nil for none.
	IDTokens *token.IDTokens
	// Issuer is the iss of access tokens.
	Issuer string
	// PublicURL is the URL clients reach rolegate by, without a trailing
	// slash: the base of the endpoints the metadata names. It is
	// configured, never read from a request, whose Host and X-Forwarded-*
	// headers any client sets and a shared cache would keep for others.
	PublicURL string
	// JWKSMaxAge is how long clients may cache the JWKS; a new key is
	// published longer than that before it signs.
	JWKSMaxAge time.Duration
	// MetadataMaxAge is how long clients may cache the metadata, which
	// changes only with the configuration.
	MetadataMaxAge time.Duration
}

// GetJWKS serves the public keys tokens verify with, the access tokens'
// and then the id tokens', each with its kid, alg and use sig; never a
// private or symmetric one.
func (d Discovery) GetJWKS(context.Context, api.GetJWKSRequestObject) (api.GetJWKSResponseObject, error) {
	set := api.JWKSet{Keys: []api.JWK{}}
	keys := d.Tokens.PublicKeys()
	if d.IDTokens != nil {
		keys = append(slices.Clip(keys), d.IDTokens.PublicKeys()...)
	}
	for _, k := range keys {
		j, err := k.PublicJWK()
		if err != nil {
			return nil, err
		}
		jwk := api.JWK{Kty: api.JWKKty(j.Kty), Kid: j.Kid, Alg: api.JWKAlg(j.Alg), Use: api.JWKUse(j.Use)}
		for _, f := range []struct {
			v   string
			dst **string
		}{{j.X, &jwk.X}, {j.Y, &jwk.Y}, {j.N, &jwk.N}, {j.E, &jwk.E}} {
			if f.v != "" {
				*f.dst = &f.v
			}
		}
		if j.Crv != "" {
			crv := api.JWKCrv(j.Crv)
			jwk.Crv = &crv
		}
		set.Keys = append(set.Keys, jwk)
	}
	return api.GetJWKS200JSONResponse{
		Body:    set,
		Headers: api.GetJWKS200ResponseHeaders{CacheControl: "public, max-age=" + strconv.Itoa(int(d.JWKSMaxAge.Seconds()))},
	}, nil
}

// GetAuthorizationServerMetadata serves RFC 8414 metadata; its endpoints
// are absolute URLs on the public URL, the same for every request.
func (d Discovery) GetAuthorizationServerMetadata(context.Context, api.GetAuthorizationServerMetadataRequestObject) (api.GetAuthorizationServerMetadataResponseObject, error) {
	return api.GetAuthorizationServerMetadata200JSONResponse{
		Body:    d.metadata(),
		Headers: api.GetAuthorizationServerMetadata200ResponseHeaders{CacheControl: d.metadataCache()},
	}, nil
}

// GetOpenIDConfiguration serves the same metadata as OpenID Connect
// Discovery 1.0 names it.
func (d Discovery) GetOpenIDConfiguration(context.Context, api.GetOpenIDConfigurationRequestObject) (api.GetOpenIDConfigurationResponseObject, error) {
	return api.GetOpenIDConfiguration200JSONResponse{
		Body:    d.metadata(),
		Headers: api.GetOpenIDConfiguration200ResponseHeaders{CacheControl: d.metadataCache()},
	}, nil
}

func (d Discovery) metadataCache() string {
	return "public, max-age=" + strconv.Itoa(int(d.MetadataMaxAge.Seconds()))
}

// claimsSupported are the claims of id tokens and UserInfo.
var claimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "azp", "email", "email_verified", "roles"}

// metadata is the one document of both discovery endpoints.
func (d Discovery) metadata() api.AuthorizationServerMetadata {
	// Public clients (people's apps) send no secret; confidential and
	// machine clients send theirs with HTTP Basic or in the form.
	methods := []string{"client_secret_basic", "client_secret_post", "none"}
	f, t := false, true
	algs := []string{token.RS256}
	if d.IDTokens != nil {
		algs = []string{d.IDTokens.Alg()}
	}
	return api.AuthorizationServerMetadata{
		Issuer:                                     d.Issuer,
		AuthorizationEndpoint:                      d.PublicURL + "/authorize",
		TokenEndpoint:                              d.PublicURL + "/token",
		UserinfoEndpoint:                           d.PublicURL + "/userinfo",
		JwksUri:                                    d.PublicURL + "/.well-known/jwks.json",
		EndSessionEndpoint:                         d.PublicURL + "/logout",
		RevocationEndpoint:                         d.PublicURL + "/token/revoke",
		GrantTypesSupported:                        grantTypes(),
		TokenEndpointAuthMethodsSupported:          methods,
		RevocationEndpointAuthMethodsSupported:     &methods,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     &[]string{"query"},
		SubjectTypesSupported:                      []string{"public"},
		IdTokenSigningAlgValuesSupported:           algs,
		CodeChallengeMethodsSupported:              []string{"S256"},
		ScopesSupported:                            authorize.Scopes,
		ClaimsSupported:                            claimsSupported,
		AcrValuesSupported:                         &[]string{token.ACRPassword, token.ACRMFA},
		PromptValuesSupported:                      &[]string{"none", "login", "consent", "select_account"},
		RequestParameterSupported:                  &f,
		RequestUriParameterSupported:               &f,
		AuthorizationResponseIssParameterSupported: &t,
	}
}
