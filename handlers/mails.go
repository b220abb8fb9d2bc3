package handlers

import (
	"context"
	"errors"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/mailtoken"
)

// Mailer queues the mails of the flows where accounts help themselves
// (sign-up, email verification, password reset, email change): letters
// of a few lines and at most one link, each in the transaction of the
// change it is about.
type Mailer struct {
	Pool *pgxpool.Pool
	// Outbox sends what is queued; nil sends at the next poll.
	Outbox *mail.Outbox
	// PublicURL is the base of the links.
	PublicURL string
	// Now is the clock of the tokens in links.
	Now func() time.Time
	// PerAddress bounds the mail to one address in an hour (mail.Enqueue);
	// zero means no bound.
	PerAddress int
}

// letter is a mail of the flows, in text and in HTML from the same words:
// Lead, then the link (Button names it in HTML), then Foot.
type letter struct {
	To, Subject string
	Lead        string
	Button      string
	Link        string
	Foot        string
}

var letterHTML = template.Must(template.New("letter").Parse(`<!DOCTYPE html>
<html lang="en"><body style="font-family:system-ui,sans-serif;color:#111827">
<p>{{.Lead}}</p>
{{if .Link}}<p><a href="{{.Link}}" style="display:inline-block;padding:.6rem 1rem;background:#4338ca;color:#fff;border-radius:.5rem;text-decoration:none">{{.Button}}</a></p>
<p style="color:#4b5563;font-size:.875rem">Or open this address: {{.Link}}</p>
{{end}}<p>{{.Foot}}</p>
</body></html>
`))

// message is l as mail: multipart, text and HTML.
func (l letter) message() (mail.Message, error) {
	var h strings.Builder
	if err := letterHTML.Execute(&h, l); err != nil {
		return mail.Message{}, err
	}
	text := l.Lead + "\n\n"
	if l.Link != "" {
		text += l.Link + "\n\n"
	}
	text += l.Foot + "\n"
	return mail.Message{To: l.To, Subject: l.Subject, Text: text, HTML: h.String()}, nil
}

// link makes a token of purpose p for user, whose mail goes to email,
// valid for ttl (voiding older ones), and returns the address of page
// with it.
func (m Mailer) link(ctx context.Context, q *db.Queries, p mailtoken.Purpose, user int64, email string, ttl time.Duration, page string) (string, error) {
	tok, err := mailtoken.Issue(ctx, q, p, user, email, m.Now(), ttl)
	if err != nil {
		return "", err
	}
	return m.PublicURL + page + "?" + url.Values{"token": {tok}}.Encode(), nil
}

// send runs compose in a transaction and queues the letters it returns in
// the same one, then has the outbox send them. When an address has had
// its hour's mail (mail.ErrBusy), everything compose did is rolled back
// too, so that no link is made (nor an older one voided) without its
// mail: send then reports false and no error, and the caller answers as
// if the mail went, since its answers never tell whether one did.
func (m Mailer) send(ctx context.Context, compose func(q *db.Queries) ([]letter, error)) (sent bool, err error) {
	err = pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		letters, err := compose(q)
		if err != nil {
			return err
		}
		for _, l := range letters {
			msg, err := l.message()
			if err != nil {
				return err
			}
			if err := mail.Enqueue(ctx, q, msg, m.PerAddress); err != nil {
				return err
			}
		}
		sent = len(letters) > 0
		return nil
	})
	if errors.Is(err, mail.ErrBusy) {
		httplog.Logger(ctx).Warn("mail not queued: an address has had " + strconv.Itoa(m.PerAddress) + " mails in the last hour")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if sent && m.Outbox != nil {
		m.Outbox.Notify()
	}
	return sent, nil
}

// verifyLetter makes a verification token for user's address and its
// letter.
func (m Mailer) verifyLetter(ctx context.Context, q *db.Queries, user int64, to string) (letter, error) {
	link, err := m.link(ctx, q, mailtoken.VerifyEmail, user, to, VerifyTTL, "/verify-email")
	return letter{To: to, Subject: "Verify your rolegate address",
		Lead:   "To confirm that " + to + " is the address of your rolegate account, open this link within 24 hours (it works once):",
		Button: "Verify my address", Link: link,
		Foot: "If you did not ask for it, ignore this mail."}, err
}

// answerFloor is how long every answer of an operation that must not tell
// whether an address has an account takes at least, so that one for an
// address with an account (a token made, a mail queued) cannot be told by
// its timing from one without.
const answerFloor = 150 * time.Millisecond

// evenTime starts the floor of an answer; the answer waits for the
// function it returns.
func evenTime() (wait func()) {
	floor := time.After(answerFloor)
	return func() { <-floor }
}

// ttlText says ttl in words: 30 minutes, 24 hours.
func ttlText(ttl time.Duration) string {
	if ttl < 2*time.Hour {
		return strconv.Itoa(max(int(ttl.Round(time.Minute)/time.Minute), 1)) + " minutes"
	}
	return strconv.Itoa(int(ttl.Round(time.Hour)/time.Hour)) + " hours"
}
