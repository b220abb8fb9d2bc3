package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/problem"
)

// signUpAccepted is the one answer of POST /signup.
const signUpAccepted = "A mail is on its way to the address: follow it to finish."

// SignUp creates an account for whoever asks, when sign-up is open. The
// answer tells nothing of whether the address had an account: the
// password is hashed either way, the answer waits for the same floor, and
// the mail goes to the address, whose owner alone reads it.
func (b Browser) SignUp(ctx context.Context, req api.SignUpRequestObject) (api.SignUpResponseObject, error) {
	if !b.SignUpOpen {
		return nil, problem.New(problem.Forbidden, "Sign-up is closed: an administrator creates accounts.")
	}
	addr, pw := req.Body.Email, req.Body.Password
	if err := accounts.CheckPassword(pw, "body.password"); err != nil {
		return nil, err
	}
	key, err := accounts.CanonicalEmail(addr)
	if err != nil {
		return nil, err
	}
	floor := time.After(resetAnswerFloor)
	hash, err := b.Hasher.Hash(ctx, pw)
	if err != nil {
		return nil, hashError(err)
	}
	var user int64
	var taken bool
	err = pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		existing, err := q.GetUserWithRolesByCanonicalEmail(ctx, key)
		switch {
		case err == nil:
			taken, user = true, existing.ID
			return mail.Enqueue(ctx, q, signUpTakenMail(existing.Email, b.PublicURL))
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		row, err := accounts.CreateHashed(ctx, q, addr, key, hash, b.SignUpRoles)
		if err != nil {
			return err
		}
		user = row.ID
		m, err := b.verifyMail(ctx, q, row.ID, row.Email)
		if err != nil {
			return err
		}
		return mail.Enqueue(ctx, q, m)
	})
	if pe, ok := errors.AsType[*problem.Error](err); ok && pe.Kind == problem.Conflict {
		// Taken by a sign-up that committed meanwhile: the same answer.
		err, taken = nil, true
	}
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	if b.Mail != nil {
		b.Mail.Notify()
	}
	ev := audit.Event{Type: audit.SignUpRequested, SubjectUserID: user, Subject: userSubject(user), Detail: "new account"}
	if taken {
		ev.Detail = "the address has an account: told so by mail"
	}
	b.Audit.Record(ctx, ev)
	<-floor
	return api.SignUp202JSONResponse{Message: signUpAccepted}, nil
}

// signUpTakenMail tells the owner of an address with an account that
// someone tried to sign up with it.
func signUpTakenMail(to, publicURL string) mail.Message {
	text := "Someone tried to create a rolegate account with " + to + ", which has one already.\n\n" +
		"If it was you, sign in instead; if you forgot your password, choose a new one at " + publicURL + "/forgot-password\n\n" +
		"If it was not you, you need do nothing: your account is unchanged.\n"
	return mail.Message{To: to, Subject: "Someone tried to sign up with your address", Text: text}
}
