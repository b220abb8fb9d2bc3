package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
)

func enqueueMail(t *testing.T, pool *pgxpool.Pool, m mail.Message) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return mail.Enqueue(ctx, db.New(pool).WithTx(tx), m, 0) }); err != nil {
		t.Fatal(err)
	}
}

var welcome = mail.Message{To: "kate@example.com", Subject: "Welcome", Text: "Hello.\n", HTML: "<p>Hello.</p>"}

// The stack sends what is queued through ROLEGATE_SMTP_URL, from the
// default sender, and its handlers get the same outbox.
func TestMailThroughSMTP(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: srv.URL()})
	if e.Mail == nil {
		t.Fatal("Stack.Mail is nil")
	}
	enqueueMail(t, e.Pool, welcome)
	e.Mail.Notify()
	got := srv.Wait(t, 1, 20*time.Second)[0]
	if got.Header.Get("From") != `"rolegate" <no-reply@127.0.0.1>` || got.Subject != "Welcome" || got.Text != welcome.Text || got.HTML != welcome.HTML {
		t.Errorf("got From %q, subject %q, text %q, html %q", got.Header.Get("From"), got.Subject, got.Text, got.HTML)
	}
}

// Without ROLEGATE_SMTP_URL, each message is a file under the data
// directory, and the log says where.
func TestMailToFiles(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	e := apitest.New(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	enqueueMail(t, e.Pool, welcome)
	e.Mail.Notify()
	dir := filepath.Join(e.DataDir, "mail")
	var paths []string
	for deadline := time.Now().Add(20 * time.Second); len(paths) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no file in %s", dir)
		}
		paths, _ = filepath.Glob(filepath.Join(dir, "*.eml"))
	}
	raw, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if m, err := mailtest.Parse(raw); err != nil || m.Subject != "Welcome" || m.Text != welcome.Text {
		t.Errorf("%s: %+v, %v", paths[0], m, err)
	}
	if !strings.Contains(log.String(), paths[0]) {
		t.Errorf("the log does not tell %s:\n%s", paths[0], log.String())
	}
}

// Close stops the outbox, and leaves no message claimed and unsent: each
// is sent, or still due to any replica.
func TestCloseStopsMail(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{SMTPURL: srv.URL()})
	for range 5 {
		enqueueMail(t, e.Pool, welcome)
	}
	e.Mail.Notify()
	e.Stack.Close()
	var claimed int
	err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND attempts > 0`).Scan(&claimed)
	if err != nil {
		t.Fatal(err)
	}
	if claimed != 0 {
		t.Errorf("%d messages claimed and not sent after Close", claimed)
	}
	enqueueMail(t, e.Pool, welcome)
	e.Mail.Notify()
	time.Sleep(300 * time.Millisecond)
	var attempts int
	if err := e.Pool.QueryRow(context.Background(), `SELECT attempts FROM mail_outbox ORDER BY id DESC LIMIT 1`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 0 {
		t.Errorf("a message queued after Close was tried %d times", attempts)
	}
}

// syncBuffer is a bytes.Buffer that a logger may write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
