package main

import (
	"bytes"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/documents/pdftest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// assertPrivate fails for anything under dir that another OS user could
// read, write or search: directories must be 0700 and files 0600 or
// stricter. rootGroupSearch allows the group search permission that pglocal
// gives the postgres group on dir itself.
func assertPrivate(t *testing.T, dir string, rootGroupSearch bool) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n++
		open := fi.Mode().Perm() & 0o077
		if p == dir && rootGroupSearch {
			open &^= 0o010
		}
		if open != 0 {
			t.Errorf("%s has mode %v: open to other users", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("nothing was written under %s", dir)
	}
}

// Whatever is written under the data directory (the blob bucket with its
// documents, here) is private to rolegate's OS user, whether the directory
// is new or an earlier version left it open, and even when the signing key
// is configured, so that nothing else creates the directory first.
func TestDataDirectoryIsPrivate(t *testing.T) {
	t.Parallel()
	pdf := pdftest.Document(2)
	for _, tt := range []struct {
		name    string
		prepare func(dir string) error
	}{
		{"fresh", func(string) error { return nil }},
		{"left open by an earlier version", func(dir string) error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			return os.Chmod(dir, 0o755)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			if err := tt.prepare(dir); err != nil {
				t.Fatal(err)
			}
			p := startProcess(t, map[string]string{
				"DATABASE_URL":            testdb.EmptyURL(t),
				"ROLEGATE_JWT_SECRET":     strings.Repeat("m", 32),
				"ROLEGATE_ADMIN_PASSWORD": "first admin password",
				"ROLEGATE_DATA_DIR":       dir,
			})
			waitReady(t, p.addr, 60*time.Second, p.logs)
			tok := loginOK(t, p.addr, "admin@localhost", "first admin password")

			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			part, _ := mw.CreateFormFile("file", "private.pdf")
			_, _ = part.Write(pdf)
			_ = mw.Close()
			req, _ := http.NewRequest("POST", "http://"+p.addr+"/documents", &body)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err := apitest.ContractClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload = %d", resp.StatusCode)
			}
			p.stop(t, syscall.SIGTERM)
			assertPrivate(t, dir, false)
		})
	}
}
