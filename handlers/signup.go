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
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/problem"
)

// signUpAccepted is the one answer of POST /signup.
const signUpAccepted = "A mail is on its way to the address: follow it to finish."

// errSignUpClosed refuses sign-up while ROLEGATE_SIGNUP is closed.
var errSignUpClosed = problem.New(problem.Forbidden, "Sign-up is closed: an administrator creates accounts.")

// SignUp creates an account for whoever asks, when sign-up is open.
func (b Browser) SignUp(ctx context.Context, req api.SignUpRequestObject) (api.SignUpResponseObject, error) {
	if err := b.signUp(ctx, req.Body.Email, req.Body.Password, "body.password"); err != nil {
		return nil, err
	}
	return api.SignUp202JSONResponse{Message: signUpAccepted}, nil
}

// signUp creates an account for addr with password pw (field names it in
// a refusal). What it answers tells nothing of whether the address had an
// account: the password is hashed either way, the answer waits for the
// same floor, and the mail goes to the address, whose owner alone reads
// it.
func (b Browser) signUp(ctx context.Context, addr, pw, field string) error {
	if !b.SignUpOpen {
		return errSignUpClosed
	}
	if err := accounts.CheckPassword(pw, field); err != nil {
		return err
	}
	key, err := accounts.CanonicalEmail(addr)
	if err != nil {
		return err
	}
	defer evenTime()()
	hash, err := b.Hasher.Hash(ctx, pw)
	if err != nil {
		return hashError(err)
	}
	var user int64
	var taken bool
	sent, err := b.Mailer.send(ctx, func(q *db.Queries) ([]letter, error) {
		existing, err := q.GetUserWithRolesByCanonicalEmail(ctx, key)
		switch {
		case err == nil:
			taken, user = true, existing.ID
			return []letter{b.signUpTakenLetter(existing.Email)}, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
		row, err := accounts.CreateHashed(ctx, q, addr, key, hash, b.SignUpRoles)
		if err != nil {
			return nil, err
		}
		user = row.ID
		l, err := b.Mailer.verifyLetter(ctx, q, row.ID, row.Email)
		return []letter{l}, err
	})
	if pe, ok := errors.AsType[*problem.Error](err); ok && pe.Kind == problem.Conflict {
		// Taken by a sign-up that committed meanwhile: the same answer.
		return nil
	}
	if err != nil || !sent {
		return dberr.Translate(err, "")
	}
	ev := audit.Event{Type: audit.SignUpRequested, SubjectUserID: user, Subject: userSubject(user), Detail: "new account"}
	if taken {
		ev.Detail = "the address has an account: told so by mail"
	}
	b.Audit.Record(ctx, ev)
	return nil
}

// VisitCreateAccountPageResponse writes r.
func (r response) VisitCreateAccountPageResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusFound)
}

// VisitCreateAccountFormResponse writes r.
func (r response) VisitCreateAccountFormResponse(w http.ResponseWriter) error {
	return r.visit(w, http.StatusSeeOther)
}

// CreateAccountPage is the sign-up page.
func (b Browser) CreateAccountPage(ctx context.Context, _ api.CreateAccountPageRequestObject) (api.CreateAccountPageResponseObject, error) {
	if !b.SignUpOpen {
		return errorPage(http.StatusForbidden, "Sign-up is closed", "Ask an administrator for an account."), nil
	}
	return b.signUpPage(ctx, http.StatusOK, "", ""), nil
}

func (b Browser) signUpPage(ctx context.Context, status int, email, message string) response {
	nonce, cookies := b.csrfNonce(ctx)
	return pageOf(signin.RenderSignUp(status, signin.SignUp{Action: b.PublicURL + "/create-account", CSRF: b.CSRF.Token(nonce),
		Email: email, Error: message}), cookies...)
}

// CreateAccountForm is the sign-up page's form: it does what SignUp does.
func (b Browser) CreateAccountForm(ctx context.Context, req api.CreateAccountFormRequestObject) (api.CreateAccountFormResponseObject, error) {
	f := req.Body
	if f == nil {
		f = &api.CreateAccountForm{}
	}
	email, pw := deref(f.Email), deref(f.Password)
	switch {
	case !b.SignUpOpen:
		return errorPage(http.StatusForbidden, "Sign-up is closed", "Ask an administrator for an account."), nil
	case !b.CSRF.Check(httplog.Cookie(ctx, b.Cookies.CSRFName()), deref(f.CsrfToken)):
		return b.signUpPage(ctx, http.StatusBadRequest, email, "This form has expired. Please enter your password again."), nil
	case email == "" || pw == "":
		return b.signUpPage(ctx, http.StatusBadRequest, email, "Enter your email and a password."), nil
	}
	err := b.signUp(ctx, email, pw, "password")
	if pe, ok := errors.AsType[*problem.Error](err); ok && pe.Kind == problem.Invalid {
		msg := pe.Detail
		if len(pe.Fields) > 0 && pe.Fields[0].Field == "password" {
			msg = "The password " + pe.Fields[0].Message + "."
		}
		return b.signUpPage(ctx, http.StatusBadRequest, email, msg), nil
	}
	if err != nil {
		return nil, err
	}
	return errorPage(http.StatusOK, "Check your mail", signUpAccepted), nil
}

// signUpTakenLetter tells the owner of an address with an account that
// someone tried to sign up with it.
func (b Browser) signUpTakenLetter(to string) letter {
	return letter{To: to, Subject: "Someone tried to sign up with your address",
		Lead:   "Someone tried to create a rolegate account with " + to + ", which has one already. If it was you, sign in instead; if you forgot your password, choose a new one:",
		Button: "Choose a new password", Link: b.PublicURL + "/forgot-password",
		Foot: "If it was not you, you need do nothing: your account is unchanged."}
}
