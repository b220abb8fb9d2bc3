// Package sdk is rolegate's Go client: the client generated from the spec
// (package gen/api, with typed responses) plus what it cannot do by itself:
// logging in, sending the access token with every request, and keeping the
// session alive (refreshing the access token before it expires, or when the
// server refuses it, e.g. after a change of roles) until Logout.
//
//	s, err := sdk.Start(ctx, "http://127.0.0.1:8080", "alice@example.com", pw)
//	me, err := s.Client().GetMeWithResponse(ctx) // me.JSON200.Email
//	err = s.Logout(ctx)
//
// # Signing in through the browser
//
// A program that acts for a person without ever handling their password
// (a command-line tool, a desktop app, a web app's server) signs them in on
// rolegate's sign-in page instead: the authorization code flow with PKCE,
// which golang.org/x/oauth2 speaks, with the endpoints /authorize and
// /token under the server's public URL. The token it gets plugs into the
// generated client through oauth2's HTTP client, which sends the access
// token with every request and refreshes it:
//
//	conf := &oauth2.Config{
//		ClientID:    "notes-cli", // a public client: no ClientSecret
//		RedirectURL: "http://127.0.0.1:8085/callback",
//		Scopes:      []string{"openid", "email", "offline_access"},
//		Endpoint: oauth2.Endpoint{
//			AuthURL:   server + "/authorize",
//			TokenURL:  server + "/token",
//			AuthStyle: oauth2.AuthStyleInParams, // client_id in the form
//		},
//	}
//	verifier := oauth2.GenerateVerifier()
//	url := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)) // for the browser
//	// ... the browser comes back to RedirectURL with the state and a code ...
//	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
//	c, err := api.NewClientWithResponses(server, api.WithHTTPClient(conf.Client(ctx, tok)))
//
// A public client, which holds no secret, names itself with client_id in
// the form (AuthStyleInParams), in the exchange and in every refresh;
// oauth2.AuthStyleInHeader would send HTTP Basic with an empty password
// instead, which is client authentication it does not have. A client
// registered with a secret sets ClientSecret, and then AuthStyleInHeader
// sends both in the Authorization header (RFC 6749 section 2.3.1). The
// package's signIn example is a whole program, with a loopback redirect
// (RFC 8252).
//
// oauth2's client is not a Session: it refreshes the access token only
// when it has expired (or is about to), not when the server refuses it
// with 401 invalid_token after a change of roles, so requests get that
// 401 until then; and it has no Logout: revoke the token source's current
// refresh token at /token/revoke with client_id to end the session, and
// send the browser to /logout (with id_token_hint, the token's
// Extra("id_token")) to sign it out of rolegate. The id token in the
// exchange's answer is not verified by oauth2: to learn who signed in,
// ask GetMe with the access token, which the server checks.
package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rolegate/rolegate/gen/api"
)

// LoginError is a refused login or refresh: the RFC 6749 error code and
// description, or the problem a 503 carried.
type LoginError struct {
	Status      int
	Code        string
	Description string
	// MFAToken, with Code mfa_required, is what SecondStep sends back
	// with the second factor.
	MFAToken string
}

// MFARequired is the LoginError code of a right password for an account
// with a second factor: send it with SecondStep, or log in with a
// SecondFactor.
const MFARequired = "mfa_required"

// SecondFactor asks the person for their second factor when the account
// has one: the 6-digit code their authenticator app shows, or one of
// their recovery codes (any other text is taken for one).
type SecondFactor func(ctx context.Context) (code string, err error)

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

// TokenWithSecondFactor is Token for an account that may have a second
// factor: when the password is right and the server asks for it
// (mfa_required), second gives the code, and SecondStep completes the
// login. A nil second is Token.
func TokenWithSecondFactor(ctx context.Context, server, email, password string, second SecondFactor, opts ...api.ClientOption) (*api.Token, error) {
	tok, err := Token(ctx, server, email, password, opts...)
	le, ok := errors.AsType[*LoginError](err)
	if !ok || le.Code != MFARequired || second == nil {
		return tok, err
	}
	code, err := second(ctx)
	if err != nil {
		return nil, err
	}
	return SecondStep(ctx, server, le.MFAToken, code, opts...)
}

// SecondStep completes a login the server answered with mfa_required:
// mfaToken is the LoginError's, code the authenticator app's 6-digit code
// or a recovery code. A refused code is a *LoginError (invalid_grant);
// the mfa_token stays good for a few more tries within its 5 minutes.
func SecondStep(ctx context.Context, server, mfaToken, code string, opts ...api.ClientOption) (*api.Token, error) {
	c, err := api.NewClientWithResponses(server, opts...)
	if err != nil {
		return nil, err
	}
	grant := "urn:rolegate:grant-type:mfa"
	body := api.CreateTokenFormdataRequestBody{GrantType: &grant, MfaToken: &mfaToken}
	if digits := strings.ReplaceAll(code, " ", ""); len(digits) == 6 && strings.Trim(digits, "0123456789") == "" {
		body.Otp = &digits
	} else {
		body.RecoveryCode = &code
	}
	return tokenOf(c.CreateTokenWithFormdataBodyWithResponse(ctx, body))
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
		if resp.JSON400.MfaToken != nil {
			e.MFAToken = *resp.JSON400.MfaToken
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
	return LoginWithSecondFactor(ctx, server, email, password, nil, opts...)
}

// LoginWithSecondFactor is Login for an account that may have a second
// factor, which second gives when the server asks for it (see
// TokenWithSecondFactor).
func LoginWithSecondFactor(ctx context.Context, server, email, password string, second SecondFactor, opts ...api.ClientOption) (*api.ClientWithResponses, error) {
	s, err := StartWithSecondFactor(ctx, server, email, password, second, opts...)
	if err != nil {
		return nil, err
	}
	return s.Client(), nil
}
