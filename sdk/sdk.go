// Package sdk is rolegate's Go client: the client generated from the spec
// (package gen/api, with typed responses) plus what it cannot do by itself:
// logging in, sending the access token with every request, and keeping the
// session alive (refreshing the access token before it expires, or when the
// server refuses it, e.g. after a change of roles) until Logout.
//
//	s, err := sdk.Start(ctx, "http://127.0.0.1:8080", "alice@example.com", pw)
//	me, err := s.Client().GetMeWithResponse(ctx) // me.JSON200.Email
//	err = s.Logout(ctx)
package sdk

import (
	"context"
	"fmt"
	"net/http"

	"github.com/rolegate/rolegate/gen/api"
)

// LoginError is a refused login or refresh: the RFC 6749 error code and
// description, or the problem a 503 carried.
type LoginError struct {
	Status      int
	Code        string
	Description string
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("rolegate: login refused (%d %s): %s", e.Status, e.Code, e.Description)
}

// WithToken makes every request of a client carry the access token. The
// token is not renewed; Start's Session renews its own.
func WithToken(token string) api.ClientOption {
	return api.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}

// Token logs in with the OAuth2 password grant and returns the tokens
// (access, and refresh if the server keeps sessions). opts configure the
// client used for the login (e.g. api.WithHTTPClient). A refused login is a
// *LoginError.
func Token(ctx context.Context, server, email, password string, opts ...api.ClientOption) (*api.Token, error) {
	c, err := api.NewClientWithResponses(server, opts...)
	if err != nil {
		return nil, err
	}
	grant := "password"
	return tokenOf(c.CreateTokenWithFormdataBodyWithResponse(ctx, api.CreateTokenFormdataRequestBody{
		GrantType: &grant, Username: &email, Password: &password,
	}))
}

// tokenOf reads /token's answer: the tokens, or a *LoginError.
func tokenOf(resp *api.CreateTokenResponse, err error) (*api.Token, error) {
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
// access token, renewed as Start's Session renews it: Login is
// Start(...).Client(). The session cannot be logged out through the
// client: use Start for that. A refused login is a *LoginError.
func Login(ctx context.Context, server, email, password string, opts ...api.ClientOption) (*api.ClientWithResponses, error) {
	s, err := Start(ctx, server, email, password, opts...)
	if err != nil {
		return nil, err
	}
	return s.Client(), nil
}
