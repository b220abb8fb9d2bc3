package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mailtoken"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/problem"
)

// resetAccepted is the one answer of POST /password-reset.
const resetAccepted = "If an account has this address, a mail with a link to choose a new password is on its way."

// errResetLink is the one refusal of a reset token.
var errResetLink = &problem.Error{Kind: problem.Invalid, Detail: "The reset link is not valid: it may have been used, have expired, or been replaced by a newer one. Ask for a new one.",
	Fields: []api.FieldError{{Field: "body.token", Message: "is not valid"}}}

// RequestPasswordReset mails the account of an address a link to choose a
// new password; the answer is the same whether or not there is one.
func (b Browser) RequestPasswordReset(ctx context.Context, req api.RequestPasswordResetRequestObject) (api.RequestPasswordResetResponseObject, error) {
	defer evenTime()()
	if err := b.mailReset(ctx, req.Body.Email); err != nil {
		return nil, err
	}
	return api.RequestPasswordReset202JSONResponse{Message: resetAccepted}, nil
}

func (b Browser) mailReset(ctx context.Context, address string) error {
	user, found, err := b.findUser(ctx, address)
	if err != nil || !found || user.Disabled {
		return err
	}
	sent, err := b.Mailer.send(ctx, func(q *db.Queries) ([]letter, error) {
		link, err := b.Mailer.link(ctx, q, mailtoken.ResetPassword, user.ID, user.Email, b.ResetTTL, "/reset-password")
		d := ttlText(b.ResetTTL)
		return []letter{{To: user.Email, Subject: "Reset your rolegate password",
			Lead:   "Someone asked to reset the password of the rolegate account for " + user.Email + ". To choose a new password, open this link within " + d + " (it works once):",
			Button: "Choose a new password", Link: link,
			Foot: "If you did not ask for it, ignore this mail: your password stays as it is."}}, err
	})
	if err != nil || !sent {
		return err
	}
	b.Audit.Record(ctx, audit.Event{Type: audit.ResetRequested, SubjectUserID: user.ID, Subject: userSubject(user.ID)})
	return nil
}

// ConfirmPasswordReset sets a new password with a reset mail's token.
func (b Browser) ConfirmPasswordReset(ctx context.Context, req api.ConfirmPasswordResetRequestObject) (api.ConfirmPasswordResetResponseObject, error) {
	if err := b.reset(ctx, req.Body.Token, req.Body.NewPassword); err != nil {
		return nil, err
	}
	return api.ConfirmPasswordReset204Response{}, nil
}

// reset redeems token and sets the password: the account's sessions end,
// and the address, which the mail reached, is verified.
func (b Browser) reset(ctx context.Context, token, newPassword string) error {
	if err := accounts.CheckPassword(newPassword, "body.new_password"); err != nil {
		return err
	}
	// Hashing is slow, so it runs before the transaction; a token that
	// turns out to be bad has cost one hash, which the address's budget
	// bounds.
	hash, err := b.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return hashError(err)
	}
	var user int64
	err = pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		g, err := mailtoken.Redeem(ctx, q, mailtoken.ResetPassword, token, b.Now())
		if err != nil {
			return err
		}
		if user, err = q.ResetPasswordHash(ctx, db.ResetPasswordHashParams{ID: g.UserID, NewHash: hash, MailedTo: g.Email}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return mailtoken.ErrInvalid // gone or disabled since
			}
			return err
		}
		return b.Sessions.EndAll(ctx, q, user, "")
	})
	if errors.Is(err, mailtoken.ErrInvalid) {
		return errResetLink
	}
	if err != nil {
		return err
	}
	b.Sessions.Sync(ctx)
	b.Audit.Record(ctx, audit.Event{Type: audit.ResetCompleted, SubjectUserID: user, Subject: userSubject(user), Detail: "every session ended"})
	return nil
}

// VisitPasswordResetPageResponse writes r.
func (r response) VisitPasswordResetPageResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitPasswordResetFormResponse writes r.
func (r response) VisitPasswordResetFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// PasswordResetPage is the page of a reset mail's link: a form for the
// new password.
func (b Browser) PasswordResetPage(ctx context.Context, req api.PasswordResetPageRequestObject) (api.PasswordResetPageResponseObject, error) {
	return b.resetPage(http.StatusOK, deref(req.Params.Token), ""), nil
}

func (b Browser) resetPage(status int, token, message string) response {
	return pageOf(signin.RenderReset(status, signin.Reset{Action: b.PublicURL + "/reset-password", Token: token, Error: message}))
}

// PasswordResetForm is the reset page's form: the new password, with the
// token as proof.
func (b Browser) PasswordResetForm(ctx context.Context, req api.PasswordResetFormRequestObject) (api.PasswordResetFormResponseObject, error) {
	f := req.Body
	if f == nil {
		f = &api.PasswordResetForm{}
	}
	token := deref(f.Token)
	err := b.reset(ctx, token, deref(f.NewPassword))
	if pe, ok := errors.AsType[*problem.Error](err); ok && pe.Kind == problem.Invalid {
		msg := pe.Detail
		if pe != errResetLink && len(pe.Fields) > 0 {
			msg = "The new password " + pe.Fields[0].Message + "."
		}
		httplog.Logger(ctx).Info("password reset refused", "reason", msg)
		return b.resetPage(http.StatusBadRequest, token, msg), nil
	}
	if err != nil {
		return nil, err
	}
	return errorPage(http.StatusOK, "Password changed", "Your password is changed, and every device signed in to your account is signed out. Sign in again with the new password."), nil
}

// VisitForgotPasswordPageResponse writes r.
func (r response) VisitForgotPasswordPageResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitForgotPasswordFormResponse writes r.
func (r response) VisitForgotPasswordFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// ForgotPasswordPage asks for the email to mail a reset link to.
func (b Browser) ForgotPasswordPage(ctx context.Context, _ api.ForgotPasswordPageRequestObject) (api.ForgotPasswordPageResponseObject, error) {
	nonce, cookies := b.csrfNonce(ctx)
	return pageOf(signin.RenderForgot(signin.Forgot{Action: b.PublicURL + "/forgot-password", CSRF: b.CSRF.Token(nonce)}), cookies...), nil
}

// ForgotPasswordForm mails the reset link, as POST /password-reset does,
// and says the same whether or not an account has the address.
func (b Browser) ForgotPasswordForm(ctx context.Context, req api.ForgotPasswordFormRequestObject) (api.ForgotPasswordFormResponseObject, error) {
	f := req.Body
	if f == nil {
		f = &api.ForgotPasswordForm{}
	}
	if !b.CSRF.Check(httplog.Cookie(ctx, b.Cookies.CSRFName()), deref(f.CsrfToken)) {
		return errorPage(http.StatusBadRequest, "This form has expired", "Go back, reload the page and try again."), nil
	}
	if deref(f.Email) == "" {
		return errorPage(http.StatusBadRequest, "No email", "Go back and enter the email of your account."), nil
	}
	defer evenTime()()
	if err := b.mailReset(ctx, *f.Email); err != nil {
		return nil, err
	}
	return errorPage(http.StatusOK, "Check your mail", resetAccepted+" It works once, within "+ttlText(b.ResetTTL)+"."), nil
}

// csrfNonce is the browser's CSRF cookie's nonce, and the cookie to set
// when it had none.
func (b Browser) csrfNonce(ctx context.Context) (string, []*http.Cookie) {
	nonce := httplog.Cookie(ctx, b.Cookies.CSRFName())
	if len(nonce) < 32 || len(nonce) > 64 {
		nonce = signin.NewNonce()
		return nonce, []*http.Cookie{b.Cookies.CSRF(nonce)}
	}
	return nonce, nil
}
