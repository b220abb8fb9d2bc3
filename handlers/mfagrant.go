package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
)

// mfaAMR is the amr of a sign-in with a password and a one-time code, an
// authenticator app's or a recovery code (RFC 8176).
var mfaAMR = []string{"pwd", "otp", "mfa"}

// mfaToken is the mfa_token of challenge tok of user: the account's id
// before the secret, so that the gate counts wrong codes against the
// account's budget (it is no secret: the token's holder knows whose it is).
func mfaToken(user int64, tok string) string { return strconv.FormatInt(user, 10) + "." + tok }

// mfaRequired answers the right password of an account with a second
// factor: 400 mfa_required with the mfa_token that the second step sends
// back, bound to the client and the scope asked for. The right password
// forgives the account's failures, as a login would.
func (a Auth) mfaRequired(ctx context.Context, user int64, scope []string, client string) error {
	ua, addr := httplog.Client(ctx)
	var tok, ceremony string
	var options json.RawMessage
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) (err error) {
		q := db.New(tx)
		tok, err = mfa.IssueChallenge(ctx, q, user,
			mfa.Challenge{AMR: pwdOnly, Scope: scope, ClientID: client, UserAgent: ua, ClientAddr: addr}, a.Sessions.Now(), 0)
		if err != nil || a.Passkeys == nil {
			return err
		}
		ceremony, options, err = a.Passkeys.BeginLogin(ctx, q, user)
		if errors.Is(err, passkey.ErrNoPasskeys) {
			err = nil
		}
		return err
	})
	if err != nil {
		return err
	}
	throttle.Succeeded(ctx)
	e := &oauth.Error{Status: http.StatusBadRequest, Code: oauth.MFARequired, MFAToken: mfaToken(user, tok),
		Description: "The account has a second factor: send mfa_token back with grant_type=" + oauth.GrantMFA +
			" and otp (the authenticator app's code), recovery_code, or passkey (the assertion for passkey_options, with passkey_ceremony), within 5 minutes."}
	if ceremony != "" {
		if e.PasskeyOptions, err = ceremonyOptions(options); err != nil {
			return err
		}
		e.PasskeyCeremony = ceremony
	}
	return e
}

// proof is a second factor as a sign-in's second step sends it: a code
// of the authenticator app, a recovery code, or a passkey's assertion for
// its ceremony.
type proof struct {
	OTP, Recovery     string
	Ceremony, Passkey string
}

// errBadMFAToken is the one refusal of an mfa_token.
var errBadMFAToken = oauth.Refuse(oauth.InvalidGrant, "The mfa_token is not valid: it may have expired (5 minutes), been used, been issued to another client, or had too many wrong codes. Log in again.")

// mfaGrant is a password login's second step: the challenge of mfa_token
// with a code of the account's authenticator app, or one of its recovery
// codes, which is used up. A wrong code is counted against the challenge,
// which five of them void, and, by the gate, against the account's budget.
func (a Auth) mfaGrant(ctx context.Context, f *api.TokenRequest) (api.CreateTokenResponseObject, error) {
	raw := deref(f.MfaToken)
	pr := proof{OTP: deref(f.Otp), Recovery: deref(f.RecoveryCode), Ceremony: deref(f.PasskeyCeremony), Passkey: deref(f.Passkey)}
	given := 0
	for _, v := range []string{pr.OTP, pr.Recovery, pr.Passkey} {
		if v != "" {
			given++
		}
	}
	switch {
	case raw == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "mfa_token is required.")
	case given != 1:
		return nil, oauth.Refuse(oauth.InvalidRequest, "Send one of otp, recovery_code and passkey.")
	case pr.Passkey != "" && pr.Ceremony == "":
		return nil, oauth.Refuse(oauth.InvalidRequest, "passkey needs its passkey_ceremony.")
	}
	c, viaClient, err := a.client(ctx, f)
	if err != nil {
		return nil, err
	}
	var client string
	if viaClient {
		client = c.ID
	}
	id, tok, _ := strings.Cut(raw, ".")
	ch, amr, err := a.secondFactor(ctx, id, tok, client, pr)
	if errors.Is(err, mfa.ErrInvalidChallenge) {
		return nil, errBadMFAToken
	}
	if errors.Is(err, mfa.ErrInvalidCode) {
		return nil, oauth.Refuse(oauth.InvalidGrant, "The code is not valid: send the code the authenticator app shows now, or an unused recovery code.")
	}
	if err != nil {
		return nil, err
	}
	u, err := a.Queries.GetSessionUser(ctx, ch.UserID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
		return nil, errBadMFAToken
	}
	if err != nil {
		return nil, err
	}
	p := person{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Roles: u.Roles, TokenVersion: u.TokenVersion}
	return a.signedIn(ctx, p, ch.Scope, ch.ClientID, amr, "second factor")
}

// secondFactor checks pr for the challenge tok of the account whose id
// is user (from the mfa_token), issued to client, and uses the challenge
// up; it returns the sign-in's amr, or mfa.ErrInvalidChallenge or
// mfa.ErrInvalidCode (a refused passkey too), each audited. A wrong code
// is counted against the challenge in a transaction of its own, so that
// the refusal does not roll the count back.
func (a Auth) secondFactor(ctx context.Context, user, tok, client string, pr proof) (mfa.IssuedChallenge, []string, error) {
	now := a.Sessions.Now()
	var ch mfa.IssuedChallenge
	amr := mfaAMR
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) (err error) {
		q := db.New(tx)
		if ch, err = mfa.LookupChallenge(ctx, q, tok, now); err != nil {
			return err
		}
		if strconv.FormatInt(ch.UserID, 10) != user || ch.ClientID != client {
			return mfa.ErrInvalidChallenge
		}
		switch {
		case pr.OTP != "":
			err = mfa.Verify(ctx, q, a.Sealer, ch.UserID, digits(pr.OTP), now)
		case pr.Recovery != "":
			err = mfa.UseRecoveryCode(ctx, q, ch.UserID, pr.Recovery, now)
		case a.Passkeys == nil:
			err = mfa.ErrInvalidCode
		default:
			var c passkey.Credential
			c, err = a.Passkeys.FinishLogin(ctx, q, ch.UserID, pr.Ceremony, []byte(pr.Passkey))
			if errors.Is(err, passkey.ErrInvalid) {
				httplog.Logger(ctx).Info("passkey refused", "reason", err.Error())
				err = mfa.ErrInvalidCode
			}
			amr = passkeyAMR(c)
		}
		if err != nil {
			return err
		}
		_, err = mfa.UseChallenge(ctx, q, tok, now)
		return err
	})
	switch {
	case errors.Is(err, mfa.ErrInvalidCode):
		var void bool
		if ferr := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) (err error) {
			void, err = mfa.FailChallenge(ctx, db.New(tx), tok, now)
			return err
		}); ferr != nil {
			return ch, nil, ferr
		}
		detail := "wrong code"
		if void {
			detail += "; the sign-in's second step is void"
		}
		a.Audit.Record(ctx, audit.Event{Type: audit.MFAFailed, SubjectUserID: ch.UserID, Subject: userSubject(ch.UserID), Detail: detail})
		return ch, nil, err
	case errors.Is(err, mfa.ErrInvalidChallenge):
		httplog.Logger(ctx).Info("mfa_token refused")
		return ch, nil, err
	case err != nil:
		return ch, nil, err
	}
	if pr.Recovery != "" {
		a.Audit.Record(ctx, audit.Event{Type: audit.RecoveryCodeUsed, SubjectUserID: ch.UserID, Subject: userSubject(ch.UserID)})
	}
	return ch, amr, nil
}
