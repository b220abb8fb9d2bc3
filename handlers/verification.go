package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/mailtoken"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/problem"
)

// VerifyTTL is how long a verification mail's link works.
const VerifyTTL = 24 * time.Hour

// errVerifyLink is the one refusal of a verification token.
var errVerifyLink = &problem.Error{Kind: problem.Invalid, Detail: "The verification link is not valid: it may have been used, have expired, been replaced by a newer one, or be for an address the account no longer has. Ask for a new one.",
	Fields: []api.FieldError{{Field: "body.token", Message: "is not valid"}}}

// RequestEmailVerification mails the caller a link that proves their
// address, unless it is proved already.
func (b Browser) RequestEmailVerification(ctx context.Context, _ api.RequestEmailVerificationRequestObject) (api.RequestEmailVerificationResponseObject, error) {
	id := access.Caller(ctx).UserID
	_, err := b.Mailer.send(ctx, func(q *db.Queries) ([]letter, error) {
		u, err := q.GetSessionUser(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && u.Disabled {
			return nil, problem.InvalidToken("The access token's account no longer exists or is disabled.", err)
		}
		if err != nil || u.EmailVerified {
			return nil, err
		}
		l, err := b.Mailer.verifyLetter(ctx, q, u.ID, u.Email)
		return []letter{l}, err
	})
	if err != nil {
		return nil, err
	}
	return api.RequestEmailVerification202JSONResponse{Message: "Unless the address is verified already, a mail with a link that verifies it is on its way."}, nil
}

// ConfirmEmailVerification proves an address with a verification mail's
// token.
func (b Browser) ConfirmEmailVerification(ctx context.Context, req api.ConfirmEmailVerificationRequestObject) (api.ConfirmEmailVerificationResponseObject, error) {
	if err := b.verify(ctx, req.Body.Token); err != nil {
		return nil, err
	}
	return api.ConfirmEmailVerification204Response{}, nil
}

func (b Browser) verify(ctx context.Context, token string) error {
	var user int64
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		g, err := mailtoken.Redeem(ctx, q, mailtoken.VerifyEmail, token, b.Now())
		if err != nil {
			return err
		}
		user, err = q.VerifyEmail(ctx, db.VerifyEmailParams{ID: g.UserID, MailedTo: g.Email})
		if errors.Is(err, pgx.ErrNoRows) {
			return mailtoken.ErrInvalid // the address changed since, or the account is gone
		}
		return err
	})
	if errors.Is(err, mailtoken.ErrInvalid) {
		return errVerifyLink
	}
	if err != nil {
		return err
	}
	b.Audit.Record(ctx, audit.Event{Type: audit.EmailVerified, SubjectUserID: user, Subject: userSubject(user)})
	return nil
}

// VisitVerifyEmailPageResponse writes r.
func (r response) VisitVerifyEmailPageResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitVerifyEmailFormResponse writes r.
func (r response) VisitVerifyEmailFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// VerifyEmailPage is the page of a verification mail's link: a button,
// since opening the link must change nothing (mail scanners open links).
func (b Browser) VerifyEmailPage(_ context.Context, req api.VerifyEmailPageRequestObject) (api.VerifyEmailPageResponseObject, error) {
	return pageOf(signin.RenderVerify(signin.Verify{Action: b.PublicURL + "/verify-email", Token: deref(req.Params.Token)})), nil
}

// VerifyEmailForm is the verification page's form.
func (b Browser) VerifyEmailForm(ctx context.Context, req api.VerifyEmailFormRequestObject) (api.VerifyEmailFormResponseObject, error) {
	var token string
	if req.Body != nil {
		token = deref(req.Body.Token)
	}
	if err := b.verify(ctx, token); errors.Is(err, errVerifyLink) {
		return errorPage(http.StatusBadRequest, "This link is not valid", errVerifyLink.Detail), nil
	} else if err != nil {
		return nil, err
	}
	return errorPage(http.StatusOK, "Address verified", "Your address is verified. You may close this page."), nil
}
