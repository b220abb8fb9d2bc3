package mail_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// arrives bounds how long a message may take to arrive: generous, for a
// loaded machine.
const arrives = 20 * time.Second

const from = `"rolegate" <no-reply@auth.example.com>`

// message is a mail as the account flows will queue it: a link with a
// one-use token in both bodies.
func message(to, subject string) mail.Message {
	link := "https://auth.example.com/reset?token=" + secretToken
	return mail.Message{
		To: to, Subject: subject,
		Text: "Hello,\n\nreset your password: " + link + "\n",
		HTML: `<p>Hello,</p><p><a href="` + link + `">Reset your password</a></p>`,
	}
}

const secretToken = "s3cr3t-0ne-use-t0ken"

// enqueue queues m in a transaction of its own, as a flow would with its
// change.
func enqueue(tb testing.TB, pool *pgxpool.Pool, m mail.Message) {
	tb.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return mail.Enqueue(ctx, db.New(pool).WithTx(tx), m, 0) })
	if err != nil {
		tb.Fatal(err)
	}
}

// run runs outbox until the test ends, and waits for it to return.
func run(tb testing.TB, outbox *mail.Outbox) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { outbox.Run(ctx) })
	tb.Cleanup(func() { cancel(); wg.Wait() })
}

// smtpSender is the SMTP sender to srv, trusting its certificate.
func smtpSender(tb testing.TB, srv *mailtest.Server) *mail.SMTP {
	tb.Helper()
	s, err := mail.ParseSMTPURL(srv.URL())
	if err != nil {
		tb.Fatal(err)
	}
	sender, err := mail.NewSMTP(s, from, mail.SMTPOptions{RootCAs: srv.Roots(), Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return sender
}

// fast is the timing of the tests' outboxes: retries within a fraction of
// a second.
func fast(sender mail.Sender) mail.Options {
	return mail.Options{Sender: sender, Poll: 50 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

// row is a message's row in the outbox.
type row struct {
	Recipient, Text, HTML string
	Attempts              int32
	LastError             string
	Sent, Failed          bool
}

func rows(tb testing.TB, pool *pgxpool.Pool) []row {
	tb.Helper()
	rs, err := pool.Query(context.Background(), `SELECT recipient, text_body, html_body, attempts, coalesce(last_error, ''),
		sent_at IS NOT NULL, failed_at IS NOT NULL FROM mail_outbox ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.Recipient, &x.Text, &x.HTML, &x.Attempts, &x.LastError, &x.Sent, &x.Failed)
		return x, err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// waitRows waits until ok holds of the outbox's rows, and returns them.
func waitRows(tb testing.TB, pool *pgxpool.Pool, ok func([]row) bool) []row {
	tb.Helper()
	deadline := time.Now().Add(arrives)
	for {
		rs := rows(tb, pool)
		if ok(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the outbox did not get there within %v: %+v", arrives, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A message queued goes out once, over each kind of connection: multipart
// text and HTML, from the sender to the recipient with its subject, and
// its bodies leave the outbox.
func TestDelivered(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		o       mailtest.Options
		wantTLS bool
	}{
		{name: "plain, starttls=off", o: mailtest.Options{}},
		{name: "STARTTLS", o: mailtest.Options{StartTLS: true}, wantTLS: true},
		{name: "STARTTLS and AUTH", o: mailtest.Options{StartTLS: true, Username: "rolegate", Password: "p@ss:w/rd"}, wantTLS: true},
		{name: "smtps, implicit TLS, and AUTH", o: mailtest.Options{ImplicitTLS: true, Username: "rolegate", Password: "pw"}, wantTLS: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := testdb.New(t)
			srv := mailtest.NewServer(t, tt.o)
			outbox := mail.NewOutbox(pool, fast(smtpSender(t, srv)))
			run(t, outbox)
			m := message("Kate <kate@example.com>", "Reset your password — rolegate")
			enqueue(t, pool, m)
			outbox.Notify()

			got := srv.Wait(t, 1, arrives)[0]
			if got.From != "no-reply@auth.example.com" || !cmp.Equal(got.To, []string{"kate@example.com"}) {
				t.Errorf("envelope: from %q to %q", got.From, got.To)
			}
			if got.TLS != tt.wantTLS || got.User != tt.o.Username {
				t.Errorf("TLS %v, authenticated as %q; want %v, %q", got.TLS, got.User, tt.wantTLS, tt.o.Username)
			}
			header := map[string]string{
				"From": got.Header.Get("From"), "To": got.Header.Get("To"), "Subject": got.Subject,
				"Auto-Submitted": got.Header.Get("Auto-Submitted"), "Content-Type": got.ContentType,
			}
			want := map[string]string{
				"From": from, "To": `"Kate" <kate@example.com>`, "Subject": m.Subject,
				"Auto-Submitted": "auto-generated", "Content-Type": "multipart/alternative",
			}
			if diff := cmp.Diff(want, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if got.Text != m.Text || got.HTML != m.HTML {
				t.Errorf("parts:\ntext %q\nhtml %q\nwant %q, %q", got.Text, got.HTML, m.Text, m.HTML)
			}
			if id := got.Header.Get("Message-Id"); !strings.HasPrefix(id, "<rolegate.") || !strings.HasSuffix(id, "@auth.example.com>") {
				t.Errorf("Message-ID %q", id)
			}
			if _, err := got.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			rs := waitRows(t, pool, func(rs []row) bool { return len(rs) == 1 && rs[0].Sent })
			if diff := cmp.Diff([]row{{Recipient: m.To, Attempts: 1, Sent: true}}, rs); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
			// Once: more polls send nothing again.
			time.Sleep(300 * time.Millisecond)
			if n := len(srv.Received()); n != 1 {
				t.Errorf("%d messages arrived, want 1", n)
			}
		})
	}
}

// A text-only message is sent as text/plain alone.
func TestDeliveredTextOnly(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := mailtest.NewServer(t, mailtest.Options{})
	outbox := mail.NewOutbox(pool, fast(smtpSender(t, srv)))
	run(t, outbox)
	enqueue(t, pool, mail.Message{To: "jörg@bücher.example", Subject: "Grüße", Text: "Nur Text.\n"})
	outbox.Notify()
	got := srv.Wait(t, 1, arrives)[0]
	if got.ContentType != "text/plain" || got.Text != "Nur Text.\n" || got.HTML != "" || got.Subject != "Grüße" {
		t.Errorf("got %s: subject %q, text %q, html %q", got.ContentType, got.Subject, got.Text, got.HTML)
	}
}

// Enqueue is part of the caller's transaction: a rolled-back change
// queues nothing.
func TestEnqueueRollsBack(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := context.Background()
	abort := errors.New("the change failed")
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := mail.Enqueue(ctx, db.New(pool).WithTx(tx), message("a@example.com", "Hi"), 0); err != nil {
			return err
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatal(err)
	}
	if rs := rows(t, pool); len(rs) != 0 {
		t.Errorf("the outbox holds %+v after a rollback", rs)
	}
}

// Enqueue's budget per address: perHour messages to one address (case
// aside) in an hour, however many try at once; another address has its
// own.
func TestEnqueueBudget(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := context.Background()
	const perHour = 3
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		to := "kate@example.com"
		if i%2 == 1 {
			to = "KATE@Example.com"
		}
		wg.Go(func() {
			errs <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				return mail.Enqueue(ctx, db.New(tx), message(to, "Hi"), perHour)
			})
		})
	}
	wg.Wait()
	close(errs)
	var queued, busy int
	for err := range errs {
		switch {
		case err == nil:
			queued++
		case errors.Is(err, mail.ErrBusy):
			busy++
		default:
			t.Fatal(err)
		}
	}
	if queued != perHour || busy != 8-perHour || len(rows(t, pool)) != perHour {
		t.Errorf("%d queued, %d busy, %d rows: want %d queued and the rest busy", queued, busy, len(rows(t, pool)), perHour)
	}
	if err := mail.Enqueue(ctx, db.New(pool), message("other@example.com", "Hi"), perHour); err != nil {
		t.Errorf("another address: %v", err)
	}
	// An hour on, the address has its budget again.
	if _, err := pool.Exec(ctx, `UPDATE mail_outbox SET created_at = created_at - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if err := mail.Enqueue(ctx, db.New(pool), message("kate@example.com", "Hi"), perHour); err != nil {
		t.Errorf("an hour on: %v", err)
	}
}

func TestEnqueueRefuses(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ok := message("a@example.com", "Hi")
	for _, tt := range []struct {
		name string
		edit func(*mail.Message)
	}{
		{"no recipient", func(m *mail.Message) { m.To = "" }},
		{"not an address", func(m *mail.Message) { m.To = "kate" }},
		{"two recipients", func(m *mail.Message) { m.To = "a@example.com, b@example.com" }},
		{"a header in the recipient", func(m *mail.Message) { m.To = "a@example.com\r\nBcc: b@example.com" }},
		{"a long recipient", func(m *mail.Message) { m.To = strings.Repeat("a", 250) + "@example.com" }},
		{"no subject", func(m *mail.Message) { m.Subject = " " }},
		{"a header in the subject", func(m *mail.Message) { m.Subject = "Hi\nBcc: b@example.com" }},
		{"a long subject", func(m *mail.Message) { m.Subject = strings.Repeat("x", 999) }},
		{"no text", func(m *mail.Message) { m.Text = "" }},
		{"a large HTML body", func(m *mail.Message) { m.HTML = strings.Repeat("x", 1<<20+1) }},
		{"not UTF-8", func(m *mail.Message) { m.Text = "\xff" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			if err := mail.Enqueue(context.Background(), db.New(pool), m, 0); !errors.Is(err, mail.ErrInvalid) {
				t.Errorf("err = %v, want mail.ErrInvalid", err)
			}
		})
	}
	if rs := rows(t, pool); len(rs) != 0 {
		t.Errorf("the outbox holds %+v", rs)
	}
}

// A mail server that is down loses nothing: the failures are recorded,
// and once it is back every message arrives, exactly once, though two
// replicas' outboxes work on the one database.
func TestServerDown(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := mailtest.NewServer(t, mailtest.Options{StartTLS: true})
	srv.Stop()
	sender := smtpSender(t, srv)
	a, b := mail.NewOutbox(pool, fast(sender)), mail.NewOutbox(pool, fast(sender))
	run(t, a)
	run(t, b)
	const n = 12
	for i := range n {
		enqueue(t, pool, message("user@example.com", "Message "+string(rune('A'+i))))
	}
	a.Notify()
	b.Notify()
	waitRows(t, pool, func(rs []row) bool {
		for _, r := range rs {
			if r.Attempts < 2 || !strings.Contains(r.LastError, "connection refused") || r.Sent || r.Failed || r.Text == "" {
				return false
			}
		}
		return len(rs) == n
	})
	srv.Start(t)

	got := srv.Wait(t, n, arrives)
	waitRows(t, pool, func(rs []row) bool {
		for _, r := range rs {
			if !r.Sent {
				return false
			}
		}
		return true
	})
	// Some polls of both outboxes later, still once each.
	time.Sleep(500 * time.Millisecond)
	got = srv.Received()
	subjects, ids := map[string]int{}, map[string]int{}
	for _, r := range got {
		subjects[r.Subject]++
		ids[r.Header.Get("Message-Id")]++
	}
	if len(got) != n || len(subjects) != n || len(ids) != n {
		t.Errorf("%d messages arrived, want %d, once each: %v", len(got), n, subjects)
	}
}

// A server that does not offer STARTTLS gets nothing unless the URL says
// starttls=off, nor does one whose certificate is not trusted, and a
// password never crosses a connection without TLS; each failure is
// recorded.
func TestRefusedConnections(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		o       mailtest.Options
		url     func(*mailtest.Server) string
		roots   bool // trust the server's certificate
		wantErr string
	}{
		{
			name: "no STARTTLS offered", o: mailtest.Options{},
			url:     func(s *mailtest.Server) string { return "smtp://" + s.Addr },
			wantErr: "does not support STARTTLS",
		},
		{
			name: "no STARTTLS offered, required", o: mailtest.Options{},
			url:     func(s *mailtest.Server) string { return "smtp://" + s.Addr + "?starttls=required" },
			wantErr: "does not support STARTTLS",
		},
		{
			name: "STARTTLS with an untrusted certificate", o: mailtest.Options{StartTLS: true},
			url:     func(s *mailtest.Server) string { return s.URL() },
			wantErr: "certificate",
		},
		{
			name: "implicit TLS with an untrusted certificate", o: mailtest.Options{ImplicitTLS: true},
			url:     func(s *mailtest.Server) string { return s.URL() },
			wantErr: "certificate",
		},
		{
			name: "opportunistic STARTTLS with an untrusted certificate", o: mailtest.Options{StartTLS: true},
			url:     func(s *mailtest.Server) string { return s.URL() + "?starttls=opportunistic" },
			wantErr: "certificate",
		},
		{
			name: "a password without TLS", o: mailtest.Options{Username: "u", Password: "hunter2-password", PlainAuth: true},
			url:     func(s *mailtest.Server) string { return s.URL() },
			roots:   true,
			wantErr: "not able to detect a supported authentication mechanism",
		},
		{
			name: "a wrong password", o: mailtest.Options{StartTLS: true, Username: "u", Password: "right"},
			url:     func(s *mailtest.Server) string { return "smtp://u:wrong-password@" + s.Addr },
			roots:   true,
			wantErr: "535",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := testdb.New(t)
			srv := mailtest.NewServer(t, tt.o)
			s, err := mail.ParseSMTPURL(tt.url(srv))
			if err != nil {
				t.Fatal(err)
			}
			var roots = srv.Roots()
			if !tt.roots {
				roots = nil
			}
			sender, err := mail.NewSMTP(s, from, mail.SMTPOptions{RootCAs: roots, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			run(t, mail.NewOutbox(pool, fast(sender)))
			enqueue(t, pool, message("kate@example.com", "Hi"))
			rs := waitRows(t, pool, func(rs []row) bool { return len(rs) == 1 && rs[0].LastError != "" })
			if r := rs[0]; !strings.Contains(r.LastError, tt.wantErr) || r.Sent || r.Attempts < 1 {
				t.Errorf("outbox: %+v, want an error containing %q", r, tt.wantErr)
			}
			for _, secret := range []string{s.Password, secretToken} {
				if secret != "" && strings.Contains(rs[0].LastError, secret) {
					t.Errorf("last_error %q holds a secret", rs[0].LastError)
				}
			}
			if got := srv.Received(); len(got) != 0 {
				t.Errorf("%d messages arrived", len(got))
			}
		})
	}
}

// A message that cannot be sent in time is given up: OnFailure hears the
// recipient and the error, once, and nothing of the message's body; the
// outbox keeps why, and no longer the body.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := mailtest.NewServer(t, mailtest.Options{})
	srv.Stop()
	type failure struct {
		to  string
		err error
	}
	failures := make(chan failure, 10)
	o := fast(smtpSender(t, srv))
	o.GiveUpAfter = time.Second
	o.OnFailure = func(_ context.Context, to string, err error) { failures <- failure{to, err} }
	run(t, mail.NewOutbox(pool, o))
	enqueue(t, pool, message("kate@example.com", "Reset your password"))

	var f failure
	select {
	case f = <-failures:
	case <-time.After(arrives):
		t.Fatal("OnFailure was not called")
	}
	if f.to != "kate@example.com" || f.err == nil || !strings.Contains(f.err.Error(), "connection refused") {
		t.Errorf("OnFailure(%q, %v)", f.to, f.err)
	}
	if strings.Contains(f.err.Error(), secretToken) || strings.Contains(f.err.Error(), "Reset") {
		t.Errorf("OnFailure's error %q tells of the message", f.err)
	}
	rs := rows(t, pool)
	if len(rs) != 1 || !rs[0].Failed || rs[0].Sent || rs[0].Attempts < 1 || rs[0].Text != "" || rs[0].HTML != "" || !strings.Contains(rs[0].LastError, "connection refused") {
		t.Errorf("outbox: %+v", rs)
	}
	srv.Start(t)
	time.Sleep(300 * time.Millisecond)
	if n := len(failures); n != 0 {
		t.Errorf("OnFailure called %d more times", n)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("%d messages arrived after giving up", n)
	}
}

// A replica that stops between claiming a message and recording its send
// leaves it to another once the claim's lease is over: it is sent then,
// and counted as a second attempt.
func TestLapsedClaim(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := mailtest.NewServer(t, mailtest.Options{})
	enqueue(t, pool, message("kate@example.com", "Hi"))
	// The claim of a replica that then vanished.
	if _, err := db.New(pool).ClaimMail(context.Background(), mail.Interval(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	run(t, mail.NewOutbox(pool, fast(smtpSender(t, srv))))
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Received()); n != 0 {
		t.Fatalf("a message claimed by another arrived within its lease (%d)", n)
	}
	srv.Wait(t, 1, arrives)
	rs := waitRows(t, pool, func(rs []row) bool { return len(rs) == 1 && rs[0].Sent })
	if rs[0].Attempts != 2 {
		t.Errorf("attempts = %d, want 2", rs[0].Attempts)
	}
}

// gate holds each send until released, to stop an outbox in the middle of
// one.
type gate struct {
	mail.Sender
	entered, release chan struct{}
}

func (g *gate) Send(ctx context.Context, m mail.Outgoing) error {
	g.entered <- struct{}{}
	<-g.release
	return g.Sender.Send(ctx, m)
}

// An outbox stopped while it sends finishes the send and records it before
// Run returns.
func TestStopFinishesSend(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	srv := mailtest.NewServer(t, mailtest.Options{})
	g := &gate{Sender: smtpSender(t, srv), entered: make(chan struct{}), release: make(chan struct{})}
	outbox := mail.NewOutbox(pool, fast(g))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); outbox.Run(ctx) }()
	enqueue(t, pool, message("kate@example.com", "Hi"))
	outbox.Notify()
	select {
	case <-g.entered:
	case <-time.After(arrives):
		t.Fatal("no send began")
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned in the middle of a send")
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	select {
	case <-done:
	case <-time.After(arrives):
		t.Fatal("Run did not return")
	}
	if rs := rows(t, pool); len(rs) != 1 || !rs[0].Sent {
		t.Errorf("outbox after Run: %+v", rs)
	}
	srv.Wait(t, 1, arrives)
}

// Prune deletes the messages that ended before the retention, and keeps
// those still to send.
func TestPrune(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	for _, to := range []string{"old-sent@example.com", "new-sent@example.com", "old-failed@example.com", "waiting@example.com"} {
		enqueue(t, pool, message(to, "Hi"))
	}
	ctx := context.Background()
	_, err := pool.Exec(ctx, `UPDATE mail_outbox SET
		sent_at = CASE recipient WHEN 'old-sent@example.com' THEN now() - interval '8 days' WHEN 'new-sent@example.com' THEN now() - interval '6 days' END,
		failed_at = CASE recipient WHEN 'old-failed@example.com' THEN now() - interval '8 days' END,
		text_body = CASE recipient WHEN 'waiting@example.com' THEN text_body ELSE '' END,
		html_body = CASE recipient WHEN 'waiting@example.com' THEN html_body ELSE '' END`)
	if err != nil {
		t.Fatal(err)
	}
	if err := mail.NewOutbox(pool, mail.Options{}).Prune(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range rows(t, pool) {
		left = append(left, r.Recipient)
	}
	if diff := cmp.Diff([]string{"new-sent@example.com", "waiting@example.com"}, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}

// The delay after each failed attempt doubles from Backoff to MaxBackoff.
func TestBackoff(t *testing.T) {
	t.Parallel()
	defaults := mail.NewOutbox(nil, mail.Options{})
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second},
		{10, 5 * time.Minute}, {11, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := defaults.Backoff(tt.attempt); got != tt.want {
			t.Errorf("after attempt %d: %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"dial tcp: connection refused", "dial tcp: connection refused"},
		{"a\r\nb\tc", "a b c"},
		{"bad \xff byte", "bad ? byte"},
		{strings.Repeat("é", 600), strings.Repeat("é", 499) + "…"},
	} {
		if got := mail.ErrorText(errors.New(tt.in)); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}
