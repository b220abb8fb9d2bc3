package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/pglocal"
)

// runProcess runs `rolegate args...` as a process of its own (this test
// binary run as main), with vars added to the environment and stdin on its
// standard input, and returns its standard output and error and how it
// ended.
func runProcess(t *testing.T, vars map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envAsMain+"=1", "ROLEGATE_LOG_FORMAT=json")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// The documented commands run, as root, against the data directory of a
// `rolegate serve` that runs the embedded PostgreSQL, leave that directory
// as the running cluster needs it: the postgres group keeps its search
// permission, so that the next checkpoint and the shutdown go through
// without a PANIC, and serve goes on answering (issue #18, finding 1).
func TestCommandsKeepTheEmbeddedClusterReachable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// As root, let the postgres OS user reach the data directory, so that
	// the cluster lives there (not in the /var/lib/rolegate fallback) and
	// depends on the directory's modes.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"ROLEGATE_DATA_DIR": dir, "DATABASE_URL": "", "ROLEGATE_ADMIN_PASSWORD": "first admin password"}
	p := startProcess(t, vars)
	waitReady(t, p.addr, 90*time.Second, p.logs)
	var dataDir string
	for _, l := range p.logs.logLines(t) {
		if l["msg"] == "embedded PostgreSQL started" {
			dataDir, _ = l["data_dir"].(string)
		}
	}
	if want := filepath.Join(dir, "pg"); dataDir != want {
		t.Fatalf("the embedded cluster lives in %q, want %q; logs:\n%s", dataDir, want, p.logs)
	}
	modeBefore := mode(t, dir)
	asRoot := os.Geteuid() == 0
	if asRoot && modeBefore != 0o710 {
		t.Fatalf("as root, serve left the data directory %v, want 0710 (search for the postgres group)", modeBefore)
	}

	for _, c := range []struct {
		args  []string
		stdin string
		// refused, when set, is the error a command may end with instead
		// of succeeding: migrate does not attach to a running cluster.
		refused string
	}{
		{args: []string{"user", "add", "--email", "cli@example.com", "--roles", "user"}, stdin: "a long enough password\n"},
		{args: []string{"keys", "list"}},
		{args: []string{"keys", "rotate"}},
		{args: []string{"client", "add", "--name", "nightly", "--roles", "system"}},
		{args: []string{"org", "add", "--slug", "cli-org", "--name", "CLI org", "--owner", "cli@example.com"}},
		{args: []string{"org", "member", "--org", "cli-org", "--email", "admin@localhost", "--roles", "viewer"}},
		{args: []string{"migrate"}, refused: "another rolegate is using the embedded PostgreSQL"},
	} {
		name := strings.Join(c.args[:min(2, len(c.args))], " ")
		out, errOut, err := runProcess(t, vars, c.stdin, c.args...)
		if err != nil && (c.refused == "" || !strings.Contains(errOut, c.refused)) {
			t.Errorf("%s: %v\n%s%s", name, err, out, errOut)
		}
		if got := mode(t, dir); got != modeBefore {
			t.Errorf("after %s the data directory is %v, want %v as serve left it", name, got, modeBefore)
		}
	}
	if !asRoot {
		t.Log("not root: the cluster runs as this user and needs no group search on the data directory; the modes checked are 0700")
	}

	// A checkpoint writes global/pg_control by its absolute path, which the
	// postgres OS user reaches only through the data directory.
	ctx := context.Background()
	pg, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Attach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop(ctx) // attached: leaves serve's cluster running
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Errorf("CHECKPOINT: %v", err)
	}
	conn.Close(ctx)

	// serve still answers, from the database: the account made on the
	// command line logs in.
	resp, err := apitest.ContractClient(t).PostForm("http://"+p.addr+"/token", url.Values{"grant_type": {"password"}, "username": {"cli@example.com"}, "password": {"a long enough password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the commands and a checkpoint, logging in = %d, want 200", resp.StatusCode)
	}
	// The organization the command line made, and its member, are in
	// force in serve: it followed the change log of another process.
	admin := loginOK(t, p.addr, "admin@localhost", "first admin password")
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/orgs", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	orgsResp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(orgsResp.Body)
	orgsResp.Body.Close()
	if orgsResp.StatusCode != 200 || !strings.Contains(string(body), `"slug":"cli-org"`) {
		t.Errorf("GET /orgs as the member the command line added: %d %s", orgsResp.StatusCode, body)
	}
	// The gate's memberships, in serve's memory: the viewer reads the
	// organization's notes.
	var page struct{ Items []struct{ ID int64 } }
	if err := json.Unmarshal(body, &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("GET /orgs: %v %s", err, body)
	}
	req, _ = http.NewRequest("GET", fmt.Sprintf("http://%s/orgs/%d/notes", p.addr, page.Items[0].ID), nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	notes, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	notes.Body.Close()
	if notes.StatusCode != 200 {
		t.Errorf("the viewer the command line added reads the notes: %d, want 200", notes.StatusCode)
	}

	p.stop(t, syscall.SIGTERM)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, l := range p.logs.logLines(t) {
		if line, _ := l["line"].(string); strings.Contains(line, "PANIC") {
			t.Errorf("PostgreSQL panicked: %s", line)
		}
		if l["msg"] == "stopping embedded PostgreSQL" || l["msg"] == "pglocal: PostgreSQL exited unasked; restarting it" {
			t.Errorf("%s: %v", l["msg"], l["err"])
		}
	}
	if t.Failed() {
		t.Logf("serve's logs:\n%s", p.logs)
	}
	assertPrivate(t, dir, asRoot)
}

// mode returns the permission bits of path.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
