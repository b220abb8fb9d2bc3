package handlers

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/problem"
)

// MFA implements the operations of a person's second factors: an
// authenticator app (TOTP) and its recovery codes.
type MFA struct {
	Pool     *pgxpool.Pool
	Queries  *db.Queries
	Sealer   *mfa.Sealer
	Hasher   *password.Pool
	Sessions *sessions.Service
	Audit    *audit.Log
	// Issuer names rolegate in authenticator apps: the public URL's host.
	Issuer string
	// Passkeys runs the WebAuthn ceremonies; nil when passkeys are off.
	Passkeys *passkey.Service
}

// totpIssuer is the issuer label of otpauth URIs for publicURL: its host
// name (a label may hold no colon), or "rolegate".
func totpIssuer(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "rolegate"
}

// errBadCode is the one refusal of a wrong, replayed or malformed code.
var errBadCode = &problem.Error{Kind: problem.Invalid, Detail: "The code is not valid: enter the code your authenticator app shows now.",
	Fields: []api.FieldError{{Field: "body.code", Message: "is not valid"}}}

// GetMyFactors lists the caller's second factors, never a secret.
func (m MFA) GetMyFactors(ctx context.Context, _ api.GetMyFactorsRequestObject) (api.GetMyFactorsResponseObject, error) {
	f, err := mfa.GetFactors(ctx, m.Queries, access.Caller(ctx).UserID)
	if err != nil {
		return nil, err
	}
	body := api.Factors{RecoveryCodesLeft: f.RecoveryCodesLeft, Passkeys: []api.Passkey{}}
	body.Totp.Enrolled = f.TOTP
	if f.TOTP {
		body.Totp.Since = &f.TOTPSince
	}
	if m.Passkeys != nil {
		keys, err := m.Passkeys.List(ctx, m.Queries, access.Caller(ctx).UserID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			body.Passkeys = append(body.Passkeys, passkeyBody(k))
		}
	}
	return api.GetMyFactors200JSONResponse(body), nil
}

// EnrolTOTP starts enrolling an authenticator app for the caller.
func (m MFA) EnrolTOTP(ctx context.Context, _ api.EnrolTOTPRequestObject) (api.EnrolTOTPResponseObject, error) {
	c := access.Caller(ctx)
	var e mfa.Enrolment
	err := pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) (err error) {
		e, err = mfa.Enrol(ctx, db.New(tx), m.Sealer, c.UserID, accountLabel(c.Email, c.UserID), m.Issuer, m.Sessions.Now())
		return err
	})
	if errors.Is(err, mfa.ErrEnrolled) {
		return nil, problem.New(problem.Conflict, "An authenticator app is enrolled already: remove it (DELETE /identify/me/mfa/totp) to enrol another.")
	}
	if err != nil {
		return nil, err
	}
	return api.EnrolTOTP200JSONResponse{Body: api.TOTPEnrolment{Secret: e.Secret, OtpauthUri: e.URI, QrCode: e.QR},
		Headers: api.EnrolTOTP200ResponseHeaders{CacheControl: "no-store"}}, nil
}

// accountLabel names the account in an authenticator app: its email, or
// its id when the email cannot be a label (it holds a colon).
func accountLabel(email string, id int64) string {
	if email == "" || strings.Contains(email, ":") {
		return "user " + strconv.FormatInt(id, 10)
	}
	return email
}

// ConfirmTOTP activates the caller's pending enrolment with a code from
// the app, and answers the recovery codes, once.
func (m MFA) ConfirmTOTP(ctx context.Context, req api.ConfirmTOTPRequestObject) (api.ConfirmTOTPResponseObject, error) {
	id := access.Caller(ctx).UserID
	var codes []string
	err := pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) (err error) {
		codes, err = mfa.Confirm(ctx, db.New(tx), m.Sealer, id, digits(req.Body.Code), m.Sessions.Now())
		return err
	})
	switch {
	case errors.Is(err, mfa.ErrInvalidCode):
		m.Audit.Record(ctx, audit.Event{Type: audit.MFAFailed, SubjectUserID: id, Subject: userSubject(id), Detail: "enrolment: wrong code"})
		return nil, errBadCode
	case errors.Is(err, mfa.ErrNotEnrolling):
		return nil, problem.New(problem.Conflict, "No enrolment is pending: start one with POST /identify/me/mfa/totp.")
	case err != nil:
		return nil, err
	}
	m.Audit.Record(ctx, audit.Event{Type: audit.MFAEnrolled, SubjectUserID: id, Subject: userSubject(id), Detail: "authenticator app"})
	return api.ConfirmTOTP200JSONResponse{Body: api.RecoveryCodes{RecoveryCodes: codes},
		Headers: api.ConfirmTOTP200ResponseHeaders{CacheControl: "no-store"}}, nil
}

// RemoveTOTP removes the caller's authenticator app, with a current code
// or the password as proof.
func (m MFA) RemoveTOTP(ctx context.Context, req api.RemoveTOTPRequestObject) (api.RemoveTOTPResponseObject, error) {
	id := access.Caller(ctx).UserID
	f, err := mfa.GetFactors(ctx, m.Queries, id)
	if err != nil {
		return nil, err
	}
	if !f.TOTP {
		return nil, problem.New(problem.NotFound, "No authenticator app is enrolled.")
	}
	proof := req.Body
	if proof.Password != nil {
		if err := m.checkPassword(ctx, id, *proof.Password); err != nil {
			return nil, err
		}
	}
	err = pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if proof.Password == nil {
			if err := mfa.Verify(ctx, q, m.Sealer, id, digits(deref(proof.Code)), m.Sessions.Now()); err != nil {
				return err
			}
		}
		_, err := mfa.Remove(ctx, q, id)
		return err
	})
	if errors.Is(err, mfa.ErrInvalidCode) {
		m.Audit.Record(ctx, audit.Event{Type: audit.MFAFailed, SubjectUserID: id, Subject: userSubject(id), Detail: "removal: wrong code"})
		return nil, errBadCode
	}
	if err != nil {
		return nil, err
	}
	m.Audit.Record(ctx, audit.Event{Type: audit.MFARemoved, SubjectUserID: id, Subject: userSubject(id), Detail: "authenticator app, by its owner"})
	return api.RemoveTOTP204Response{}, nil
}

// checkPassword checks the caller's password, as proof for a change.
func (m MFA) checkPassword(ctx context.Context, id int64, pw string) error {
	hash, err := m.Queries.GetPasswordHash(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return problem.InvalidToken("The access token's account no longer exists or is disabled.", err)
	}
	if err != nil {
		return dberr.Translate(err, "")
	}
	ok, _, err := m.Hasher.Verify(ctx, hash, pw)
	if errors.Is(err, password.ErrMalformedHash) {
		ok, err = false, nil
	}
	if err != nil {
		return hashError(err)
	}
	if !ok {
		m.Audit.Record(ctx, audit.Event{Type: audit.MFAFailed, SubjectUserID: id, Subject: userSubject(id), Detail: "removal: wrong password"})
		return &problem.Error{Kind: problem.Invalid, Detail: "The password is incorrect.",
			Fields: []api.FieldError{{Field: "body.password", Message: "is incorrect"}}}
	}
	return nil
}

// digits is a code as people type it, without the spaces and dashes some
// apps show in it.
func digits(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
}

// ResetUserFactors removes an account's second factors, for a person who
// lost them; its pending second steps end with them.
func (u Users) ResetUserFactors(ctx context.Context, req api.ResetUserFactorsRequestObject) (api.ResetUserFactorsResponseObject, error) {
	err := u.asAdmin(ctx, func(q *db.Queries) error {
		removed, err := mfa.Remove(ctx, q, req.Id)
		if err == nil && u.Passkeys != nil {
			var n int64
			n, err = u.Passkeys.RemoveAll(ctx, q, req.Id)
			removed = removed || n > 0
		}
		if err == nil && !removed {
			return problem.New(problem.NotFound, "The account has no second factor, or there is no such account.")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	u.Audit.Record(ctx, audit.Event{Type: audit.MFARemoved, SubjectUserID: req.Id, Subject: userSubject(req.Id), Detail: "every factor, by an administrator"})
	return api.ResetUserFactors204Response{}, nil
}
