package handlers

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/problem"
)

// errPasskeysOff refuses passkey ceremonies when ROLEGATE_PUBLIC_URL
// cannot be a WebAuthn origin.
var errPasskeysOff = problem.New(problem.Conflict, "Passkeys are off: ROLEGATE_PUBLIC_URL must be https, or http://localhost, and name a host (not an IP address).")

// Factors tells whether an account has a second factor: an
// authenticator app, or a passkey (Passkeys nil: passkeys are off). The
// handlers ask it at sign-in, and the gate for x-acr.
type Factors struct {
	Queries  *db.Queries
	Passkeys *passkey.Service
}

// HasFactor reports whether user has a second factor.
func (f Factors) HasFactor(ctx context.Context, user int64) (bool, error) {
	has, err := mfa.HasFactor(ctx, f.Queries, user)
	if err != nil || has || f.Passkeys == nil {
		return has, err
	}
	return f.Passkeys.Has(ctx, f.Queries, user)
}

// ceremonyOptions is a ceremony's WebAuthn options as the API's JSON
// object.
func ceremonyOptions(raw json.RawMessage) (map[string]any, error) {
	var opts map[string]any
	return opts, json.Unmarshal(raw, &opts)
}

// passkeyAMR is the amr of a sign-in by password and the passkey c.
func passkeyAMR(c passkey.Credential) []string {
	return append(append([]string{"pwd"}, passkey.AMR(c)...), "mfa")
}

// BeginPasskeyRegistration starts registering a passkey for the caller.
func (m MFA) BeginPasskeyRegistration(ctx context.Context, _ api.BeginPasskeyRegistrationRequestObject) (api.BeginPasskeyRegistrationResponseObject, error) {
	if m.Passkeys == nil {
		return nil, errPasskeysOff
	}
	c := access.Caller(ctx)
	var ceremony string
	var options json.RawMessage
	err := pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) (err error) {
		ceremony, options, err = m.Passkeys.BeginRegistration(ctx, db.New(tx), passkey.User{ID: c.UserID, Email: c.Email, DisplayName: c.Email})
		return err
	})
	if errors.Is(err, passkey.ErrTooMany) {
		return nil, problem.New(problem.Conflict, "The account has as many passkeys as it may (20): remove one first.")
	}
	if err != nil {
		return nil, err
	}
	opts, err := ceremonyOptions(options)
	if err != nil {
		return nil, err
	}
	return api.BeginPasskeyRegistration200JSONResponse{Body: api.PasskeyCeremony{Ceremony: ceremony, Options: opts},
		Headers: api.BeginPasskeyRegistration200ResponseHeaders{CacheControl: "no-store"}}, nil
}

// errBadPasskey is the one refusal of a passkey's answer.
var errBadPasskey = &problem.Error{Kind: problem.Invalid, Detail: "The passkey's answer is not valid for this ceremony: it may have expired (5 minutes) or been used. Start again.",
	Fields: []api.FieldError{{Field: "body.credential", Message: "is not valid"}}}

// RegisterPasskey finishes registering a passkey for the caller. A
// refused answer uses its ceremony up all the same.
func (m MFA) RegisterPasskey(ctx context.Context, req api.RegisterPasskeyRequestObject) (api.RegisterPasskeyResponseObject, error) {
	if m.Passkeys == nil {
		return nil, errPasskeysOff
	}
	id := access.Caller(ctx).UserID
	raw, err := json.Marshal(req.Body.Credential)
	if err != nil {
		return nil, err
	}
	var cred passkey.Credential
	var refused error
	err = pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) (err error) {
		cred, err = m.Passkeys.FinishRegistration(ctx, db.New(tx), id, req.Body.Ceremony, raw, deref(req.Body.Name))
		if errors.Is(err, passkey.ErrInvalid) {
			refused, err = err, nil
		}
		return err
	})
	switch {
	case errors.Is(err, passkey.ErrName):
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "A passkey's name is at most 64 characters, without control characters.",
			Fields: []api.FieldError{{Field: "body.name", Message: "is not a name"}}}
	case errors.Is(err, passkey.ErrTooMany):
		return nil, problem.New(problem.Conflict, "The account has as many passkeys as it may (20): remove one first.")
	case err != nil:
		return nil, err
	case refused != nil:
		m.Audit.Record(ctx, audit.Event{Type: audit.MFAFailed, SubjectUserID: id, Subject: userSubject(id), Detail: "passkey registration refused"})
		return nil, &problem.Error{Kind: problem.Invalid, Detail: errBadPasskey.Detail, Fields: errBadPasskey.Fields, Err: refused}
	}
	m.Audit.Record(ctx, audit.Event{Type: audit.MFAEnrolled, SubjectUserID: id, Subject: userSubject(id), Detail: "passkey " + cred.Name})
	return api.RegisterPasskey201JSONResponse(passkeyBody(cred)), nil
}

// passkeyBody is the API's Passkey of c.
func passkeyBody(c passkey.Credential) api.Passkey {
	p := api.Passkey{Id: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, Synced: c.BackupEligible}
	if !c.LastUsedAt.IsZero() {
		p.LastUsedAt = &c.LastUsedAt
	}
	return p
}

// RemovePasskey removes one of the caller's passkeys.
func (m MFA) RemovePasskey(ctx context.Context, req api.RemovePasskeyRequestObject) (api.RemovePasskeyResponseObject, error) {
	id := access.Caller(ctx).UserID
	removed := false
	if m.Passkeys != nil {
		var err error
		if removed, err = m.Passkeys.Remove(ctx, m.Queries, id, req.Id); err != nil {
			return nil, err
		}
	}
	if !removed {
		return nil, problem.New(problem.NotFound, "The caller has no such passkey.")
	}
	m.Audit.Record(ctx, audit.Event{Type: audit.MFARemoved, SubjectUserID: id, Subject: userSubject(id), Detail: "a passkey, by its owner"})
	return api.RemovePasskey204Response{}, nil
}
