// Package mail sends rolegate's mail through an outbox: Enqueue queues a
// message in the transaction of the change that causes it, so that it is
// queued exactly when that change commits, and an Outbox on every replica
// sends what is queued through a Sender (an SMTP server, or files for a
// machine without one), retrying with backoff while the server is away.
//
// # Delivery
//
// A replica claims one due message at a time with FOR UPDATE SKIP LOCKED,
// in a statement of its own that also makes the message due again only
// after a lease (Options.Lease): while one replica sends a message, no
// other takes it. It then sends the message and records the outcome. SMTP
// cannot make this exactly once: a replica that stops (or loses the
// database) after the server accepted a message and before it recorded so
// leaves the message to be sent again by any replica once the lease is
// over. That is the one way a message goes out twice; the copies carry the
// same Message-ID, by which mail clients and providers tell a duplicate.
// Otherwise each message is sent once. A replica that shuts down finishes
// the send it is in, bounded by the sender's timeout, and records it.
//
// A failed attempt is recorded (attempts, last_error) and retried after a
// delay that doubles from Options.Backoff up to Options.MaxBackoff; once
// the next attempt would come later than Options.GiveUpAfter after the
// message was queued, the message is given up (failed_at), and
// Options.OnFailure hears of it with the recipient and the error.
//
// The bodies of a message carry its links, and so one-use tokens in plain:
// they are erased from the outbox as soon as the message is sent or given
// up. The row itself is kept a while for operators (Options.Retention).
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"

	"github.com/rolegate/rolegate/gen/db"
)

// Message is a mail to send: To is one address (perhaps with a display
// name, as in a To header), Text the text/plain body and HTML, when set,
// its text/html alternative.
type Message struct {
	To, Subject, Text, HTML string
}

// Bounds of a message, as the outbox's CHECKs have them.
const (
	maxSubject   = 998 // the length of a line (RFC 5322 section 2.1.1)
	maxRecipient = 254
	maxBody      = 1 << 20
)

// ErrInvalid is wrapped by Enqueue's error for a message it refuses.
var ErrInvalid = errors.New("mail: invalid message")

// ErrBusy is Enqueue's error for a message to an address that has had its
// hour's budget of mail: the caller should roll its transaction back, so
// that what the message was about (a token, say) does not happen either.
var ErrBusy = errors.New("mail: the address has had its hour's mail")

// Enqueue queues m to be sent once the transaction of q commits (q is the
// caller's transaction, through db.Queries.WithTx): a rolled-back change
// sends nothing. It returns an error wrapping ErrInvalid, and queues
// nothing, when m has no single valid recipient, no subject, a line break
// in either, no text body, or a part over 1 MiB.
//
// perHour, unless zero, bounds the mail queued to one address (case
// aside) in an hour, whatever the reason and whichever replica: past it,
// Enqueue queues nothing and returns ErrBusy. Enqueues to one address
// take turns (a transaction-scoped advisory lock), so that two at once
// cannot both take the last place.
//
// The caller should then call Outbox.Notify, after the commit, so that
// this replica sends at once rather than at its next poll.
func Enqueue(ctx context.Context, q *db.Queries, m Message, perHour int) error {
	if err := m.check(); err != nil {
		return err
	}
	if perHour > 0 {
		if err := q.LockMailRecipient(ctx, m.To); err != nil {
			return fmt.Errorf("mail: taking the address's turn: %w", err)
		}
		n, err := q.CountRecentMail(ctx, m.To)
		if err != nil {
			return fmt.Errorf("mail: counting the address's mail: %w", err)
		}
		if n >= int64(perHour) {
			return ErrBusy
		}
	}
	if err := q.EnqueueMail(ctx, db.EnqueueMailParams{Recipient: m.To, Subject: m.Subject, TextBody: m.Text, HtmlBody: m.HTML}); err != nil {
		return fmt.Errorf("mail: queueing: %w", err)
	}
	return nil
}

func (m Message) check() error {
	invalid := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }
	switch {
	case len(m.To) > maxRecipient || strings.ContainsAny(m.To, "\r\n"):
		return invalid("the recipient is too long or has a line break")
	case strings.TrimSpace(m.Subject) == "" || utf8.RuneCountInString(m.Subject) > maxSubject || strings.ContainsAny(m.Subject, "\r\n"):
		return invalid("the subject is empty, too long or has a line break")
	case m.Text == "":
		return invalid("no text body")
	case len(m.Text) > maxBody || len(m.HTML) > maxBody:
		return invalid("a body is over 1 MiB")
	case !utf8.ValidString(m.To) || !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Text) || !utf8.ValidString(m.HTML):
		return invalid("not UTF-8")
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return invalid("the recipient is not one address")
	}
	return nil
}

// Outgoing is a message the outbox hands a Sender: ID is its row in the
// outbox and Date when it was queued, both the same on every attempt.
type Outgoing struct {
	Message
	ID   int64
	Date time.Time
}

// Sender delivers messages. Send returns nil once the message is handed
// over (the mail server accepted it, or it is written); an error means it
// was not, and the outbox tries again later. The error's text is recorded
// in the outbox and the log: it must not carry a credential or the
// message's body. Send may be called from several goroutines.
type Sender interface {
	Send(ctx context.Context, m Outgoing) error
}

// compose is m as go-mail's message, from from: multipart/alternative
// when m has an HTML body, with a Message-ID that every attempt shares;
// its parts quoted-printable, or 8bit (RFC 6152) when plain, for a file
// that people read as it is.
func compose(from string, m Outgoing, plain bool) (*gomail.Msg, error) {
	enc := gomail.EncodingQP
	if plain {
		enc = gomail.NoEncoding
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithEncoding(enc))
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: the sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: the recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(m.Date)
	msg.SetMessageIDWithValue(messageID(from, m))
	// RFC 3834: no vacation or out-of-office replies to this.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// messageID is the Message-ID of m without its angle brackets: its outbox
// row and the time it was queued, at the sender's domain.
func messageID(from string, m Outgoing) string {
	domain := "localhost"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	return "rolegate." + strconv.FormatInt(m.ID, 10) + "." + strconv.FormatInt(m.Date.UnixMicro(), 36) + "@" + domain
}
