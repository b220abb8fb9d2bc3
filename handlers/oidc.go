package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// withIDToken adds to a code exchange's token response the id token of
// its grant for u (OpenID Connect Core §3.1.3.3): sid is the browser
// session the person signed in with, email and email_verified come with
// the email scope.
func (a Auth) withIDToken(resp api.CreateTokenResponseObject, g authorize.Grant, u db.GetSessionUserRow) (api.CreateTokenResponseObject, error) {
	ok, isOK := resp.(api.CreateToken200JSONResponse)
	if !isOK {
		return resp, nil
	}
	c := token.IDClaims{
		Subject: strconv.FormatInt(u.ID, 10), Audience: g.ClientID, AuthorizedParty: g.ClientID,
		AuthTime: g.AuthTime, Nonce: g.Nonce, SessionID: g.BrowserSession, AMR: g.AMR,
	}
	if g.Scope.Has(authorize.ScopeEmail) {
		c.Email, c.EmailVerified = u.Email, &u.EmailVerified
	}
	raw, err := a.IDTokens.Issue(c)
	if err != nil {
		return nil, err
	}
	ok.Body.IdToken = &raw
	return ok, nil
}

// GetUserInfo is the UserInfo endpoint (OpenID Connect Core §5.3) by GET.
func (a Auth) GetUserInfo(ctx context.Context, _ api.GetUserInfoRequestObject) (api.GetUserInfoResponseObject, error) {
	info, err := a.userInfo(ctx)
	if err != nil {
		return nil, err
	}
	return api.GetUserInfo200JSONResponse{UserInfoJSONResponse: userInfoResponse(info)}, nil
}

// PostUserInfo is the UserInfo endpoint by POST; the gate has taken the
// token from the header or the form.
func (a Auth) PostUserInfo(ctx context.Context, _ api.PostUserInfoRequestObject) (api.PostUserInfoResponseObject, error) {
	info, err := a.userInfo(ctx)
	if err != nil {
		return nil, err
	}
	return api.PostUserInfo200JSONResponse{UserInfoJSONResponse: userInfoResponse(info)}, nil
}

func userInfoResponse(info api.UserInfo) api.UserInfoJSONResponse {
	return api.UserInfoJSONResponse{Body: info, Headers: api.UserInfoResponseHeaders{CacheControl: "no-store"}}
}

// userInfo is what UserInfo answers for the caller: the account as it is
// now (its roles too), which must still exist and be enabled.
func (a Auth) userInfo(ctx context.Context) (api.UserInfo, error) {
	c := access.Caller(ctx)
	u, err := a.Queries.GetSessionUser(ctx, c.UserID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
		return api.UserInfo{}, problem.New(problem.Unauthenticated, "The account is gone or disabled.")
	}
	if err != nil {
		return api.UserInfo{}, err
	}
	return api.UserInfo{Sub: strconv.FormatInt(u.ID, 10), Email: &u.Email, EmailVerified: &u.EmailVerified, Roles: nonNil(u.Roles)}, nil
}

// EndSession is the end-session endpoint (OpenID Connect RP-Initiated
// Logout 1.0) by GET.
func (b Browser) EndSession(ctx context.Context, req api.EndSessionRequestObject) (api.EndSessionResponseObject, error) {
	p := req.Params
	return b.logout(ctx, logoutRequest{hint: deref(p.IdTokenHint), redirect: deref(p.PostLogoutRedirectUri),
		state: deref(p.State), client: deref(p.ClientId)})
}

// EndSessionByForm is the end-session endpoint by POST, and the
// confirmation page's form.
func (b Browser) EndSessionByForm(ctx context.Context, req api.EndSessionByFormRequestObject) (api.EndSessionByFormResponseObject, error) {
	f := req.Body
	if f == nil {
		f = &api.LogoutForm{}
	}
	return b.logout(ctx, logoutRequest{hint: deref(f.IdTokenHint), redirect: deref(f.PostLogoutRedirectUri),
		state: deref(f.State), client: deref(f.ClientId), csrf: deref(f.CsrfToken)})
}

type logoutRequest struct {
	hint, redirect, state, client, csrf string
}

// logout ends the browser session a valid id_token_hint names (or, once
// the person confirmed on the page, the one of the browser's cookie), and
// every session started under it, clears the sign-in cookie, and sends the
// browser to the post_logout_redirect_uri registered for the client, or
// shows that it is signed out.
func (b Browser) logout(ctx context.Context, r logoutRequest) (response, error) {
	var hinted *token.IDClaims
	if r.hint != "" {
		c, err := b.IDTokens.ParseHint(r.hint)
		if err != nil {
			httplog.Logger(ctx).Info("logout: id_token_hint refused", "reason", err.Error())
			return errorPage(http.StatusBadRequest, "Sign-out failed", "The sign-out link is not valid (its id_token_hint is not one rolegate issued)."), nil
		}
		hinted = c
		if r.client != "" && r.client != c.Audience {
			return errorPage(http.StatusBadRequest, "Sign-out failed", "The sign-out link names another client than its id_token_hint."), nil
		}
		r.client = c.Audience
	}
	redirect := ""
	if r.redirect != "" {
		client, err := b.Clients.Lookup(ctx, r.client)
		if err != nil {
			return response{}, err
		}
		if client == nil || !slices.Contains(client.PostLogoutRedirectURIs, r.redirect) {
			return errorPage(http.StatusBadRequest, "Sign-out failed", "The post_logout_redirect_uri is not one registered for the client."), nil
		}
		redirect = r.redirect
		if r.state != "" {
			u, _ := url.Parse(redirect) // registered URIs parse
			q := u.Query()
			q.Set("state", r.state)
			u.RawQuery = q.Encode()
			redirect = u.String()
		}
	}
	q := b.Queries
	cookie := httplog.Cookie(ctx, b.Cookies.SessionName())
	br, signedIn, err := b.Sessions.BrowserOf(ctx, q, cookie)
	if err != nil {
		return response{}, err
	}
	var end string
	switch {
	case hinted != nil:
		// The hint's session, whichever browser asks: the client that
		// holds the id token asks to end it.
		end = hinted.SessionID
	case !b.CSRF.Check(httplog.Cookie(ctx, b.Cookies.CSRFName()), r.csrf):
		if !signedIn {
			break
		}
		// No hint: ask, so that no other site can sign the person out.
		nonce, cookies := b.csrfNonce(ctx)
		var hidden []signin.Field
		for _, f := range []signin.Field{{Name: "post_logout_redirect_uri", Value: r.redirect}, {Name: "state", Value: r.state}, {Name: "client_id", Value: r.client}} {
			if f.Value != "" {
				hidden = append(hidden, f)
			}
		}
		return pageOf(signin.RenderConfirm(signin.Confirm{Action: b.PublicURL + "/logout", CSRF: b.CSRF.Token(nonce), Hidden: hidden}), cookies...), nil
	case signedIn:
		end = br.ID
	}
	if end != "" {
		err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error { return b.Sessions.EndIn(ctx, db.New(tx), end) })
		if err != nil {
			return response{}, err
		}
		b.Sessions.Sync(ctx)
		ev := audit.Event{Type: audit.SessionEnded, Subject: "session:" + end, Detail: "signed out (end-session endpoint)"}
		if hinted != nil {
			ev.SubjectUserID, _ = strconv.ParseInt(hinted.Subject, 10, 64)
		} else {
			ev.SubjectUserID = br.UserID
		}
		b.Audit.Record(ctx, ev)
	}
	cookies := []*http.Cookie{}
	if cookie != "" && (!signedIn || end == br.ID) {
		cookies = append(cookies, b.Cookies.Session("", 0))
	}
	if redirect != "" {
		return response{location: redirect, cookies: cookies}, nil
	}
	return pageOf(signin.RenderMessage(http.StatusOK, signin.Message{Title: "Signed out", Text: "You are signed out of rolegate in this browser. You may close this page."}), cookies...), nil
}
