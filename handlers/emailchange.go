package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mailtoken"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/problem"
)

// errChangeLink is the one refusal of an email change token.
var errChangeLink = &problem.Error{Kind: problem.Invalid, Detail: "The email change link is not valid: it may have been used, have expired or been replaced by a newer one, or the address may have been taken meanwhile. Ask for a new one.",
	Fields: []api.FieldError{{Field: "body.token", Message: "is not valid"}}}

// emailChangeAccepted is the one answer of POST /identify/me/email.
const emailChangeAccepted = "Unless another account has it, a link that makes the change is on its way to the new address."

// RequestEmailChange mails a new address the link that moves the caller's
// account to it, and the current address a notice; with the current
// password.
func (b Browser) RequestEmailChange(ctx context.Context, req api.RequestEmailChangeRequestObject) (api.RequestEmailChangeResponseObject, error) {
	id := access.Caller(ctx).UserID
	newAddr := req.Body.NewEmail
	key, err := email.Canonical(newAddr)
	if err != nil {
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "The new email is not an address rolegate accepts: " + err.Error() + ".",
			Fields: []api.FieldError{{Field: "body.new_email", Message: err.Error()}}}
	}
	u, err := b.Queries.GetSessionUser(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
		return nil, problem.InvalidToken("The access token's account no longer exists or is disabled.", err)
	}
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	old, err := b.Queries.GetPasswordHash(ctx, id)
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	ok, _, err := b.Hasher.Verify(ctx, old, req.Body.Password)
	if errors.Is(err, password.ErrMalformedHash) {
		ok, err = false, nil
	}
	if err != nil {
		return nil, hashError(err)
	}
	if !ok {
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "The password is incorrect.",
			Fields: []api.FieldError{{Field: "body.password", Message: "is incorrect"}}}
	}
	if cur, err := email.Canonical(u.Email); err == nil && cur == key {
		return nil, &problem.Error{Kind: problem.Invalid, Detail: "That is the account's address already.",
			Fields: []api.FieldError{{Field: "body.new_email", Message: "is the current address"}}}
	}
	sent, err := b.Mailer.send(ctx, func(q *db.Queries) ([]letter, error) {
		if _, err := q.GetUserWithRolesByCanonicalEmail(ctx, key); err == nil {
			return nil, nil // taken: no link, and the same answer
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		link, err := b.Mailer.link(ctx, q, mailtoken.ChangeEmail, id, newAddr, VerifyTTL, "/change-email")
		return []letter{{To: newAddr, Subject: "Confirm your new rolegate address",
			Lead:   "To move your rolegate account from " + u.Email + " to " + newAddr + ", open this link within 24 hours (it works once):",
			Button: "Use this address", Link: link,
			Foot: "If you did not ask for it, ignore this mail."},
			{To: u.Email, Subject: "Your rolegate address is about to change",
				Lead:   "Someone signed in to your rolegate account asked to move it to " + newAddr + ". It moves only when the link mailed there is followed. If it was not you, change your password now:",
				Button: "Change my password", Link: b.PublicURL + "/forgot-password",
				Foot: "Choosing a new password signs every device out of your account."}}, err
	})
	if err != nil {
		return nil, err
	}
	if !sent {
		return api.RequestEmailChange202JSONResponse{Message: emailChangeAccepted}, nil
	}
	b.Audit.Record(ctx, audit.Event{Type: audit.EmailChangeRequested, SubjectUserID: id, Subject: userSubject(id)})
	return api.RequestEmailChange202JSONResponse{Message: emailChangeAccepted}, nil
}

// ConfirmEmailChange makes an email change with its mail's token.
func (b Browser) ConfirmEmailChange(ctx context.Context, req api.ConfirmEmailChangeRequestObject) (api.ConfirmEmailChangeResponseObject, error) {
	if err := b.changeEmail(ctx, req.Body.Token); err != nil {
		return nil, err
	}
	return api.ConfirmEmailChange204Response{}, nil
}

// changeEmail redeems token and moves the account to its address, which
// the mail proved; the tokens issued before, which carry the old email,
// are refused.
func (b Browser) changeEmail(ctx context.Context, token string) error {
	var user int64
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		g, err := mailtoken.Redeem(ctx, q, mailtoken.ChangeEmail, token, b.Now())
		if err != nil {
			return err
		}
		key, err := email.Canonical(g.Email)
		if err != nil {
			return mailtoken.ErrInvalid
		}
		user, err = q.ChangeEmail(ctx, db.ChangeEmailParams{ID: g.UserID, Email: g.Email, CanonicalEmail: &key})
		if errors.Is(err, pgx.ErrNoRows) {
			return mailtoken.ErrInvalid
		}
		if err != nil {
			if pe, ok := errors.AsType[*problem.Error](dberr.Translate(err, "")); ok && pe.Kind == problem.Conflict {
				return mailtoken.ErrInvalid // taken meanwhile
			}
			return err
		}
		return b.Sessions.RevokeUser(ctx, q, user, false)
	})
	if errors.Is(err, mailtoken.ErrInvalid) {
		return errChangeLink
	}
	if err != nil {
		return err
	}
	b.Sessions.Sync(ctx)
	b.Audit.Record(ctx, audit.Event{Type: audit.EmailChanged, SubjectUserID: user, Subject: "user:" + strconv.FormatInt(user, 10)})
	return nil
}

// VisitChangeEmailPageResponse writes r.
func (r response) VisitChangeEmailPageResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitChangeEmailFormResponse writes r.
func (r response) VisitChangeEmailFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// ChangeEmailPage is the page of an email change mail's link: a button.
func (b Browser) ChangeEmailPage(_ context.Context, req api.ChangeEmailPageRequestObject) (api.ChangeEmailPageResponseObject, error) {
	return pageOf(signin.RenderVerify(signin.Verify{Action: b.PublicURL + "/change-email", Token: deref(req.Params.Token),
		Title: "Confirm your new address", Lead: "Move your account to this mail's address.", Button: "Use this address"})), nil
}

// ChangeEmailForm is the email change page's form.
func (b Browser) ChangeEmailForm(ctx context.Context, req api.ChangeEmailFormRequestObject) (api.ChangeEmailFormResponseObject, error) {
	var token string
	if req.Body != nil {
		token = deref(req.Body.Token)
	}
	err := b.changeEmail(ctx, token)
	if errors.Is(err, errChangeLink) {
		httplog.Logger(ctx).Info("email change refused")
		return errorPage(http.StatusBadRequest, "This link is not valid", errChangeLink.Detail), nil
	}
	if err != nil {
		return nil, err
	}
	return errorPage(http.StatusOK, "Address changed", "Your account's address is changed. Sign in again with the new one."), nil
}
