package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// Without a mail server, each message is an .eml file, private to
// rolegate's user, that parses as the message sent would, and the log
// tells its path but not its body.
func TestFiles(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	dir := filepath.Join(t.TempDir(), "data", "mail")
	var log bytes.Buffer
	files := &mail.Files{Dir: dir, From: from, Logger: slog.New(slog.NewJSONHandler(&log, nil))}
	outbox := mail.NewOutbox(pool, fast(files))
	run(t, outbox)
	m := message("kate@example.com", "Verify your address")
	enqueue(t, pool, m)
	outbox.Notify()
	waitRows(t, pool, func(rs []row) bool { return len(rs) == 1 && rs[0].Sent })

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s is %v, want 0700", dir, fi.Mode().Perm())
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(paths) != 1 || !strings.HasSuffix(paths[0], ".eml") {
		t.Fatalf("files %v, %v; want one .eml", paths, err)
	}
	fi, err = os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v, want 0600", paths[0], fi.Mode().Perm())
	}
	raw, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := mailtest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("From") != from || got.Header.Get("To") != "<kate@example.com>" || got.Subject != m.Subject ||
		got.ContentType != "multipart/alternative" || got.Text != m.Text || got.HTML != m.HTML {
		t.Errorf("the file holds From %q, To %q, subject %q, %s, text %q, html %q",
			got.Header.Get("From"), got.Header.Get("To"), got.Subject, got.ContentType, got.Text, got.HTML)
	}
	// The link reads as it is in the file (8bit, not quoted-printable),
	// for a newcomer to copy.
	if link := "https://auth.example.com/reset?token=" + secretToken; !strings.Contains(string(raw), " "+link+"\n") {
		t.Errorf("the file does not hold the link %s as it is:\n%s", link, raw)
	}
	if !strings.Contains(log.String(), `"path":"`+paths[0]+`"`) {
		t.Errorf("the log does not tell the path %s:\n%s", paths[0], log.String())
	}
	if strings.Contains(log.String(), secretToken) || strings.Contains(log.String(), "reset your password") {
		t.Errorf("the log tells the body:\n%s", log.String())
	}
}

// A directory left open to others is closed; another attempt at a message
// writes its file again rather than a second one.
func TestFilesAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := &mail.Files{Dir: dir, From: from}
	m := mail.Outgoing{Message: message("kate@example.com", "Hi"), ID: 7, Date: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	for range 2 {
		if err := files.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "20260304T050607Z-7.eml" {
		t.Errorf("files %v, want 20260304T050607Z-7.eml alone", entries)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s is %v, want 0700", dir, fi.Mode().Perm())
	}
}
