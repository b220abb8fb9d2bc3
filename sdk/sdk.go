// Package sdk is rolegate's Go client: the client generated from the spec
// (package gen/api, with typed responses) plus the one thing it cannot do by
// itself, logging in and sending the access token with every request.
//
//	c, err := sdk.Login(ctx, "http://127.0.0.1:8080", "alice@example.com", pw)
//	me, err := c.GetMeWithResponse(ctx) // me.JSON200.Email
package sdk

import (
	"context"
	"fmt"
	"net/http"

	"github.com/rolegate/rolegate/gen/api"
)

// LoginError is a refused login: the RFC 6749 error code and description,
// or the problem a 503 carried.
type LoginError struct {
	Status      int
	Code        string
	Description string
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("rolegate: login refused (%d %s): %s", e.Status, e.Code, e.Description)
}

// WithToken makes every request of a client carry the access token.
func WithToken(token string) api.ClientOption {
	return api.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}

// Token logs in with the OAuth2 password grant and returns the access
// token. opts configure the client used for the login (e.g.
// api.WithHTTPClient). A refused login is a *LoginError.
func Token(ctx context.Context, server, email, password string, opts ...api.ClientOption) (*api.Token, error) {
	c, err := api.NewClientWithResponses(server, opts...)
	if err != nil {
		return nil, err
	}
	grant := "password"
	resp, err := c.CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{
		GrantType: &grant, Username: &email, Password: &password,
	})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.JSON200 != nil:
		return resp.JSON200, nil
	case resp.JSON400 != nil:
		e := &LoginError{Status: resp.StatusCode(), Code: string(resp.JSON400.Error)}
		if resp.JSON400.ErrorDescription != nil {
			e.Description = *resp.JSON400.ErrorDescription
		}
		return nil, e
	case resp.ApplicationproblemJSON503 != nil:
		e := &LoginError{Status: 503, Code: "unavailable"}
		if d := resp.ApplicationproblemJSON503.Detail; d != nil {
			e.Description = *d
		}
		return nil, e
	}
	return nil, &LoginError{Status: resp.StatusCode(), Code: "unexpected_response"}
}

// Login logs in and returns a client whose every request carries the
// access token. The token is not renewed: log in again when it expires
// (Token's ExpiresIn says when).
func Login(ctx context.Context, server, email, password string, opts ...api.ClientOption) (*api.ClientWithResponses, error) {
	tok, err := Token(ctx, server, email, password, opts...)
	if err != nil {
		return nil, err
	}
	return api.NewClientWithResponses(server, append(opts, WithToken(tok.AccessToken))...)
}
