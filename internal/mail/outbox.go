package mail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
)

// Options configure an Outbox; zero values are the defaults.
type Options struct {
	// Sender delivers the messages; Run needs one, Prune does not.
	Sender Sender
	// Logger reports what is sent, retried and given up; nil discards.
	// It never logs a message's body.
	Logger *slog.Logger
	// OnFailure is called once for each message given up, with its
	// recipient and the last error (never the body, whose links it
	// would leak); nil does nothing.
	OnFailure func(ctx context.Context, to string, err error)
	// Poll is how often the outbox is read without a Notify, which is how
	// a replica sends what another queued (default 1s).
	Poll time.Duration
	// Backoff is the delay after a first failed attempt, doubling after
	// each further one up to MaxBackoff (defaults 1s and 5m). Tests
	// shorten them.
	Backoff, MaxBackoff time.Duration
	// GiveUpAfter is how long after it was queued a message is still
	// tried (default 24h); a message is tried at least once.
	GiveUpAfter time.Duration
	// Lease is how long a claimed message is left to the replica sending
	// it before another may take it (default 2m); it must be longer than
	// a send may take, which a Sender bounds (SMTPOptions.Timeout).
	Lease time.Duration
	// Retention is how long a message sent or given up stays in the
	// outbox, without its bodies, before Prune deletes it (default 7 days).
	Retention time.Duration
}

// The defaults of Options.
const (
	DefaultPoll        = time.Second
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultLease       = 2 * time.Minute
	DefaultRetention   = 7 * 24 * time.Hour
)

// maxError bounds the error text kept in the outbox (its CHECK).
const maxError = 500

// recordTimeout bounds recording the outcome of a send, which happens
// even when the outbox is stopping.
const recordTimeout = 10 * time.Second

// Outbox sends the messages Enqueue queued. Every replica runs one on the
// same database; they never send a message at the same time (see the
// package's documentation for what a crash may do).
type Outbox struct {
	pool *pgxpool.Pool
	o    Options
	wake chan struct{}
	// down is set while the outbox cannot be read, so that an outage is
	// logged once rather than at every poll.
	down atomic.Bool
}

// NewOutbox returns the outbox of pool, sending with o.Sender.
func NewOutbox(pool *pgxpool.Pool, o Options) *Outbox {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Poll = cmp.Or(o.Poll, DefaultPoll)
	o.Backoff = cmp.Or(o.Backoff, DefaultBackoff)
	o.MaxBackoff = max(cmp.Or(o.MaxBackoff, DefaultMaxBackoff), o.Backoff)
	o.GiveUpAfter = cmp.Or(o.GiveUpAfter, DefaultGiveUpAfter)
	o.Lease = cmp.Or(o.Lease, DefaultLease)
	o.Retention = cmp.Or(o.Retention, DefaultRetention)
	return &Outbox{pool: pool, o: o, wake: make(chan struct{}, 1)}
}

// Notify makes Run look for due messages now rather than at its next
// poll: call it after committing a transaction that called Enqueue. It
// never blocks.
func (b *Outbox) Notify() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run sends due messages, one at a time, until ctx ends: whenever Notify
// is called and every Poll. When ctx ends during a send, the send
// finishes and its outcome is recorded before Run returns.
func (b *Outbox) Run(ctx context.Context) {
	for {
		b.sendDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-time.After(b.o.Poll):
		}
	}
}

// sendDue sends the due messages until none is left or ctx ends.
func (b *Outbox) sendDue(ctx context.Context) {
	q := db.New(b.pool)
	for ctx.Err() == nil {
		row, err := q.ClaimMail(ctx, interval(b.o.Lease))
		if errors.Is(err, pgx.ErrNoRows) {
			b.up()
			return
		}
		if err != nil {
			if ctx.Err() == nil && !b.down.Swap(true) {
				b.o.Logger.Warn("mail: cannot read the outbox; mail waits there", "err", err)
			}
			return
		}
		b.up()
		b.deliver(ctx, q, row)
	}
}

func (b *Outbox) up() {
	if b.down.Swap(false) {
		b.o.Logger.Info("mail: reading the outbox again")
	}
}

// deliver sends the claimed row and records the outcome. Neither is cut
// short by ctx: a send begun is finished, within the sender's bounds.
func (b *Outbox) deliver(ctx context.Context, q *db.Queries, row db.ClaimMailRow) {
	ctx = context.WithoutCancel(ctx)
	log := b.o.Logger.With("mail_id", row.ID, "to", row.Recipient, "attempt", row.Attempts)
	claimed, created := row.ClaimedAt.Time, row.CreatedAt.Time
	if row.Attempts > 1 && claimed.After(created.Add(b.o.GiveUpAfter)) {
		// Claimed again past its time: the attempt before was the last
		// one, or was cut off by a replica that stopped mid-send.
		reason := "not sent: the last attempt did not finish"
		if row.LastError != nil {
			reason = *row.LastError
		}
		b.giveUp(ctx, q, log, row, errors.New(reason))
		return
	}
	m := Outgoing{ID: row.ID, Date: created, Message: Message{To: row.Recipient, Subject: row.Subject, Text: row.TextBody, HTML: row.HtmlBody}}
	sendCtx, cancel := context.WithTimeout(ctx, b.o.Lease/2)
	err := b.o.Sender.Send(sendCtx, m)
	cancel()
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if err == nil {
		if err := q.MarkMailSent(rctx, row.ID); err != nil {
			log.Error("mail: sent, but could not record it: it will be sent again once its lease is over", "err", err, "lease", b.o.Lease.String())
			return
		}
		log.Info("mail sent")
		return
	}
	delay := b.backoff(int(row.Attempts))
	if claimed.Add(delay).After(created.Add(b.o.GiveUpAfter)) {
		b.giveUp(ctx, q, log, row, err)
		return
	}
	msg := errorText(err)
	if err := q.RetryMail(rctx, db.RetryMailParams{ID: row.ID, LastError: &msg, RetryIn: interval(delay)}); err != nil {
		log.Error("mail: could not record a failed attempt; it is tried again once its lease is over", "err", err, "send_err", msg)
		return
	}
	log.Warn("mail: sending failed; trying again later", "err", msg, "retry_in", delay.String())
}

// giveUp records that row will not be sent, because of err, and tells
// OnFailure.
func (b *Outbox) giveUp(ctx context.Context, q *db.Queries, log *slog.Logger, row db.ClaimMailRow, err error) {
	msg := errorText(err)
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if err := q.FailMail(rctx, db.FailMailParams{ID: row.ID, LastError: &msg}); err != nil {
		log.Error("mail: could not record giving up; it is tried again once its lease is over", "err", err, "send_err", msg)
		return
	}
	log.Error("mail: given up", "err", msg, "queued_at", row.CreatedAt.Time)
	if b.o.OnFailure != nil {
		b.o.OnFailure(ctx, row.Recipient, errors.New(msg))
	}
}

// backoff is the delay after the attempt-th failed attempt.
func (b *Outbox) backoff(attempt int) time.Duration {
	d := b.o.Backoff
	for i := 1; i < attempt && d < b.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, b.o.MaxBackoff)
}

// Prune deletes the messages sent or given up more than Retention ago.
func (b *Outbox) Prune(ctx context.Context) error {
	if _, err := db.New(b.pool).DeleteEndedMail(ctx, interval(b.o.Retention)); err != nil {
		return fmt.Errorf("mail: pruning the outbox: %w", err)
	}
	return nil
}

// errorText is err's text as the outbox keeps it: valid UTF-8 on one line,
// at most maxError characters.
func errorText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxError {
		s = string([]rune(s)[:maxError-1]) + "…"
	}
	return s
}

func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
}
