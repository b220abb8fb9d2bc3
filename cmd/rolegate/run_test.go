package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/migrate"
	"github.com/rolegate/rolegate/internal/testdb"
)

// The end-to-end tests start this test binary again as the real rolegate
// process, so that signals, exit codes and restarts are the real thing.
const envAsMain = "ROLEGATE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envAsMain) == "1" {
		main()
		os.Exit(0)
	}
	testdb.Main(m)
}

// syncBuffer collects a process's log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes the JSON log lines written so far.
func (b *syncBuffer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // not every line is ours (e.g. the final error)
		}
		lines = append(lines, m)
	}
	return lines
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// masterKey is the ROLEGATE_MASTER_KEY replicas on one DATABASE_URL share
// in these tests.
const masterKey = "a master key of at least 32 bytes, shared"

// publicURL is the ROLEGATE_PUBLIC_URL that replicas of one deployment, or
// one replica before and after a restart on another port, share in these
// tests, as behind a load balancer: the default, each one's own listen
// address, would give each its own issuer, refusing the others' tokens.
const publicURL = "http://rolegate.test"

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// waitReady polls /readyz until it answers 200 or the deadline passes.
func waitReady(t *testing.T, addr string, within time.Duration, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := apitest.ContractClient(t).Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("rolegate on %s not ready within %v; logs:\n%s", addr, within, logs)
}

// startRun runs `rolegate serve` in-process through run and returns its
// address; the server stops when the test ends.
func startRun(t *testing.T, vars map[string]string) (string, *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	vars["ROLEGATE_ADDR"] = addr
	vars["ROLEGATE_LOG_FORMAT"] = "json"
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// stdout (the generated admin password) goes to the log buffer too.
	go func() { done <- run(ctx, []string{"serve"}, env(vars), strings.NewReader(""), logs, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	waitReady(t, addr, 30*time.Second, logs)
	return addr, logs
}

func TestServeProbesAndRequestLog(t *testing.T) {
	t.Parallel()
	addr, logs := startRun(t, map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_MASTER_KEY": masterKey})

	tests := []struct {
		path       string
		wantStatus int
		wantType   string
		wantInBody string
	}{
		{"/healthz", 200, "application/json", `"status":"ok"`},
		{"/readyz", 200, "application/json", `"status":"ok"`},
		{"/no/such/path", 404, "application/problem+json", `"status":404`},
	}
	for _, tt := range tests {
		resp, err := apitest.ContractClient(t).Get("http://" + addr + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType || !strings.Contains(string(body), tt.wantInBody) {
			t.Errorf("GET %s = %d %s %s, want %d %s with %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.wantStatus, tt.wantType, tt.wantInBody)
		}
		id := resp.Header.Get("X-Request-Id")
		if len(id) < 16 {
			t.Errorf("GET %s: X-Request-Id = %q, want a request id", tt.path, id)
		}
		// The request's log line carries the same id and the promised fields.
		var line map[string]any
		for range 100 {
			for _, l := range logs.logLines(t) {
				if l["msg"] == "request" && l["request_id"] == id {
					line = l
				}
			}
			if line != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if line == nil {
			t.Fatalf("no log line for request %s; logs:\n%s", id, logs)
		}
		if line["method"] != "GET" || line["path"] != tt.path || line["status"] != float64(tt.wantStatus) || line["duration"] == nil {
			t.Errorf("log line %v lacks method, path, status or duration", line)
		}
	}
}

func TestReadyzIs503WhenTheDatabaseGoesAway(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	addr, _ := startRun(t, map[string]string{"DATABASE_URL": url, "ROLEGATE_MASTER_KEY": masterKey})

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}

	resp, err := apitest.ContractClient(t).Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("readyz without database = %d %v %s, want 503 problem with Retry-After", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(string(body), "does not exist") || strings.Contains(string(body), "SQLSTATE") {
		t.Errorf("readyz leaks the database error: %s", body)
	}
	// Liveness does not depend on the database.
	resp, err = apitest.ContractClient(t).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz = %d, want 200", resp.StatusCode)
	}
}

// process is a real `rolegate serve` process (this test binary run as main).
type process struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan struct{}
}

func startProcess(t *testing.T, vars map[string]string) *process {
	t.Helper()
	p := &process{addr: freeAddr(t), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "serve")
	p.cmd.Env = append(os.Environ(), envAsMain+"=1", "ROLEGATE_ADDR="+p.addr, "ROLEGATE_LOG_FORMAT=json")
	for k, v := range vars {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM) })
	return p
}

// stop signals the process and waits for it to exit.
func (p *process) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("rolegate did not exit within 60s of %v; logs:\n%s", sig, p.logs)
	}
}

// eventually reports whether cond holds within 5 s. A served request's log
// line reaches stderr up to logbuf.DefaultInterval after its answer.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func countLogs(t *testing.T, logs *syncBuffer, msg string) int {
	n := 0
	for _, l := range logs.logLines(t) {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// Two replicas started at the same moment against one empty database both
// become ready, and each schema step is applied by exactly one of them.
func TestTwoReplicasStartTogether(t *testing.T) {
	t.Parallel()
	url := testdb.EmptyURL(t)
	a := startProcess(t, map[string]string{"DATABASE_URL": url, "ROLEGATE_MASTER_KEY": masterKey})
	b := startProcess(t, map[string]string{"DATABASE_URL": url, "ROLEGATE_MASTER_KEY": masterKey})
	waitReady(t, a.addr, 60*time.Second, a.logs)
	waitReady(t, b.addr, 60*time.Second, b.logs)

	steps, err := migrate.Parse(rolegate.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLogs(t, a.logs, "embedded PostgreSQL started") + countLogs(t, b.logs, "embedded PostgreSQL started"); n != 0 {
		t.Errorf("with DATABASE_URL set, %d embedded clusters were started", n)
	}
	if got := countLogs(t, a.logs, "applied schema step") + countLogs(t, b.logs, "applied schema step"); got != len(steps) {
		t.Errorf("schema steps applied %d times across both replicas, want %d", got, len(steps))
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM schema_steps").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(steps) {
		t.Errorf("schema_steps has %d rows, want %d", rows, len(steps))
	}
	for _, p := range []*process{a, b} {
		p.stop(t, syscall.SIGTERM)
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, p.logs)
		}
	}
}

// With no DATABASE_URL rolegate runs its own PostgreSQL under
// ROLEGATE_DATA_DIR; killed with SIGKILL, it starts again with no clean-up,
// and what it wrote before is still there.
func TestEmbeddedSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ROLEGATE_DATA_DIR": t.TempDir(), "DATABASE_URL": "", "ROLEGATE_ADMIN_PASSWORD": "first admin password", "ROLEGATE_PUBLIC_URL": publicURL}
	first := startProcess(t, vars)
	waitReady(t, first.addr, 90*time.Second, first.logs)
	if countLogs(t, first.logs, "applied schema step") == 0 {
		t.Fatalf("first start applied no schema; logs:\n%s", first.logs)
	}
	tok := loginOK(t, first.addr, "admin@localhost", "first admin password")
	first.stop(t, syscall.SIGKILL)

	second := startProcess(t, vars)
	waitReady(t, second.addr, 90*time.Second, second.logs)
	// The admin written by the first run is still there, and its token still
	// verifies: the signing key kept in the data directory survived too.
	if code, body := get(t, second.addr, "/identify/me", tok); code != 200 || !strings.Contains(body, "admin@localhost") {
		t.Errorf("token from before the restart: %d %s", code, body)
	}
	loginOK(t, second.addr, "admin@localhost", "first admin password")
	// The schema written by the first run survived: nothing is applied again.
	if n := countLogs(t, second.logs, "applied schema step"); n != 0 {
		t.Errorf("second start applied %d schema steps again; the data did not survive", n)
	}
	second.stop(t, syscall.SIGTERM)
	if code := second.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, second.logs)
	}
	if countLogs(t, second.logs, "shutting down") != 1 {
		t.Errorf("no graceful shutdown logged:\n%s", second.logs)
	}
	assertPrivate(t, vars["ROLEGATE_DATA_DIR"], true)
}

func TestUnknownCommand(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, env(nil), strings.NewReader(""), io.Discard, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "usage: rolegate") {
		t.Fatalf("run(frobnicate) = %v, stderr %q; want an error and the usage", err, stderr.String())
	}
}

// loginOK logs in through /token and returns the access token.
func loginOK(t *testing.T, addr, email, pw string) string {
	t.Helper()
	resp, err := apitest.ContractClient(t).PostForm("http://"+addr+"/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("login as %s = %d (%v)", email, resp.StatusCode, err)
	}
	return body.AccessToken
}

// get sends a GET with a bearer token and returns status and body.
func get(t *testing.T, addr, path, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func runCmd(t *testing.T, vars map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, env(vars), strings.NewReader(stdin), &out, io.Discard)
	return out.String(), err
}

// The seed's whole flow: add a user on the command line, log in at /token,
// identify, create a note, read it back by document source.
func TestUserAddThenTheSeedFlow(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_JWT_SECRET": strings.Repeat("k", 32)}
	addr, _ := startRun(t, vars)

	out, err := runCmd(t, vars, "a long enough password\n", "user", "add", "--email", "Flow@Example.com", "--roles", "user")
	if err != nil || !strings.Contains(out, "created user") {
		t.Fatalf("user add: %v %q", err, out)
	}
	tok := loginOK(t, addr, "flow@example.com", "a long enough password")
	if code, body := get(t, addr, "/identify/me", tok); code != 200 || !strings.Contains(body, `"roles":["user"]`) {
		t.Fatalf("identify/me = %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/notes", strings.NewReader(`{"document_src":"seed.pdf","title":"t","body":"b"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Location") == "" {
		t.Fatalf("create note = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := get(t, addr, "/notes/document/src/seed.pdf", tok); code != 200 || !strings.Contains(body, `"title":"t"`) {
		t.Fatalf("notes by document = %d %s", code, body)
	}
}

func TestUserAddRefusals(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testdb.URL(t)}
	if _, err := runCmd(t, vars, "a long enough password\n", "user", "add", "--email", "dup@example.com", "--roles", "user"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stdin string
		args        []string
		wantErr     string
	}{
		{"duplicate email", "another long password\n", []string{"--email", "DUP@example.com", "--roles", "user"}, "exists"},
		{"short password", "short\n", []string{"--email", "s@example.com", "--roles", "user"}, "12 to"},
		{"no password", "", []string{"--email", "n@example.com", "--roles", "user"}, "no password"},
		{"unknown role", "a long enough password\n", []string{"--email", "r@example.com", "--roles", "user,wizard"}, `no role "wizard"`},
		{"no email", "a long enough password\n", []string{"--roles", "user"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCmd(t, vars, tt.stdin, append([]string{"user", "add"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// On the first start of an empty database an administrator is created with
// a generated password, shown once; later starts create nothing.
func TestFirstStartCreatesTheAdministrator(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testdb.EmptyURL(t), "ROLEGATE_JWT_SECRET": strings.Repeat("s", 32)}
	addr, logs := startRun(t, vars)
	m := regexp.MustCompile(`First administrator: admin@localhost, password: (\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no generated password shown; output:\n%s", logs)
	}
	tok := loginOK(t, addr, "admin@localhost", m[1])
	if code, body := get(t, addr, "/identify/me", tok); code != 200 || !strings.Contains(body, `"roles":["admin"]`) {
		t.Errorf("admin identity = %d %s", code, body)
	}
	for _, l := range logs.logLines(t) {
		if strings.Contains(fmt.Sprint(l), m[1]) {
			t.Errorf("the generated password is in a log line: %v", l)
		}
	}
	// A second server on the same database creates no second administrator.
	vars2 := map[string]string{"DATABASE_URL": vars["DATABASE_URL"], "ROLEGATE_JWT_SECRET": vars["ROLEGATE_JWT_SECRET"]}
	_, logs2 := startRun(t, vars2)
	if strings.Contains(logs2.String(), "First administrator") {
		t.Errorf("second start created the administrator again:\n%s", logs2)
	}
}

func TestRoutesPrintsTheAccessMatrix(t *testing.T) {
	out, err := runCmd(t, nil, "", "routes")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^METHOD\s+PATH\s+OPERATION\s+ACCESS$`),
		regexp.MustCompile(`(?m)^POST\s+/token\s+createToken\s+public$`),
		regexp.MustCompile(`(?m)^GET\s+/identify/me\s+getMe\s+any authenticated user$`),
		regexp.MustCompile(`(?m)^POST\s+/notes\s+createNote\s+user, admin \(user accounts only\)$`),
		regexp.MustCompile(`(?m)^GET\s+/notes/document/src/\{src\}\s+listNotesByDocument\s+user$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("routes output lacks %v:\n%s", want, out)
		}
	}
	// Every operation of the spec is listed with its access.
	spec, err := access.LoadSpec(context.Background(), rolegate.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range spec.Policy.Rules {
		line := regexp.MustCompile(`(?m)^` + r.Method + `\s+` + regexp.QuoteMeta(r.Path) + `\s+` + r.OperationID + `\s+` + regexp.QuoteMeta(r.Access()) + `$`)
		if !line.MatchString(out) {
			t.Errorf("routes output lacks %s %s (%s)", r.Method, r.Path, r.Access())
		}
	}
	if n := strings.Count(out, "\n"); n != len(spec.Policy.Rules)+1 {
		t.Errorf("routes printed %d lines, want a header and %d operations", n, len(spec.Policy.Rules))
	}
}

func TestServeRefusesAShortJWTSecret(t *testing.T) {
	_, err := runCmd(t, map[string]string{"ROLEGATE_JWT_SECRET": "too short"}, "", "serve")
	if err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Fatalf("err = %v, want the short secret refused", err)
	}
}

// ROLEGATE_BLOB_URL takes cloud buckets as well as directories.
func TestOpenStoreSchemes(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{"", false}, // a directory under the data dir
		{"file://" + t.TempDir(), false},
		{"s3://rolegate-docs?region=eu-west-1", !cloudBuckets}, // a clear refusal without -tags cloudblob
		{"ftp://example.com/docs", true},
	}
	for _, tt := range tests {
		store, err := openStore(context.Background(), config.Config{DataDir: t.TempDir(), BlobURL: tt.url})
		if (err != nil) != tt.wantErr {
			t.Errorf("openStore(%q) error = %v, want error %v", tt.url, err, tt.wantErr)
		}
		if store != nil {
			store.Close()
		}
	}
}

// Replicas on one database must share the master key that seals the
// signing keys: without one, serve refuses to start, saying so in one line.
func TestServeRefusesNoMasterKeyWithADatabaseURL(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"serve"}, env(map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/none"}), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ROLEGATE_MASTER_KEY is unset") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run = %v, want one line about ROLEGATE_MASTER_KEY", err)
	}
}

// `rolegate keys list` shows the signing keys of both purposes; `keys
// rotate` publishes a new key of each, or of the purpose named, that signs
// later, which a server then publishes beside the current. With HS256
// there are id-token keys alone.
func TestKeysListAndRotate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_MASTER_KEY": masterKey, "ROLEGATE_ID_TOKEN_ALG": "ES256"}
	rows := func(out, purpose, state string) int {
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[0] == purpose && f[3] == state {
				n++
			}
		}
		return n
	}
	out, err := runCmd(t, vars, "", "keys", "list")
	if err != nil || !strings.HasPrefix(out, "PURPOSE") || rows(out, "access", "signing") != 1 || rows(out, "id", "signing") != 1 || strings.Count(out, "\n") != 3 {
		t.Fatalf("keys list = %v\n%s", err, out)
	}
	if !strings.Contains(out, "EdDSA") || !strings.Contains(out, "ES256") {
		t.Errorf("keys list names the algorithms of neither purpose:\n%s", out)
	}
	out, err = runCmd(t, vars, "", "keys", "rotate")
	if err != nil || rows(out, "access", "published") != 1 || rows(out, "id", "published") != 1 || rows(out, "access", "signing") != 1 || rows(out, "id", "signing") != 1 {
		t.Fatalf("keys rotate = %v\n%s", err, out)
	}
	out, err = runCmd(t, vars, "", "keys", "rotate", "--purpose", "id")
	if err != nil || rows(out, "id", "published") != 2 || rows(out, "id", "signing") != 1 || strings.Contains(out, "access") {
		t.Fatalf("keys rotate --purpose id = %v\n%s", err, out)
	}
	out, err = runCmd(t, vars, "", "keys", "list", "--purpose", "access")
	if err != nil || rows(out, "access", "published") != 1 || strings.Contains(out, "\nid ") {
		t.Fatalf("keys list --purpose access = %v\n%s", err, out)
	}
	addr, _ := startRun(t, vars)
	_, body := get(t, addr, "/.well-known/jwks.json", "")
	if n := strings.Count(body, `"kid"`); n != 5 {
		t.Errorf("the JWKS after the rotations has %d keys, want 2 of access tokens and 3 of id tokens: %s", n, body)
	}
	for _, args := range [][]string{{"keys", "rotate", "--purpose", "refresh"}, {"keys", "list", "extra"}, {"keys"}, {"keys", "rotate", "--purpose"}} {
		if _, err := runCmd(t, vars, "", args...); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%s = %v, want the usage", strings.Join(args, " "), err)
		}
	}

	hs := map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_JWT_SECRET": strings.Repeat("h", 32)}
	if _, err := runCmd(t, hs, "", "keys", "rotate", "--purpose", "access"); err == nil || !strings.Contains(err.Error(), "HS256") {
		t.Errorf("keys rotate --purpose access with HS256 = %v, want a refusal naming HS256", err)
	}
	out, err = runCmd(t, hs, "", "keys", "list")
	if err != nil || rows(out, "id", "signing") != 1 || !strings.Contains(out, "RS256") || strings.Contains(out, "access") {
		t.Errorf("keys list with HS256 = %v\n%s; want the id-token key alone", err, out)
	}
}

// `rolegate client add` makes a machine client whose secret gets a token.
func TestClientAdd(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_MASTER_KEY": masterKey}
	out, err := runCmd(t, vars, "", "client", "add", "--name", "nightly", "--roles", "system")
	m := regexp.MustCompile(`created client (cl_\S+) \(nightly\), roles system\nclient_secret: (\S+) `).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("client add = %v %q", err, out)
	}
	addr, _ := startRun(t, vars)
	code, tok := grant(t, addr, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {m[1]}, "client_secret": {m[2]}})
	if code != 200 || tok["scope"] != "system" {
		t.Fatalf("client credentials = %d %v", code, tok)
	}
	if _, err := runCmd(t, vars, "", "client", "add", "--name", "x", "--roles", "wizard"); err == nil || !strings.Contains(err.Error(), `no role "wizard"`) {
		t.Errorf("client add with an unknown role = %v", err)
	}

	// A public client that signs people in: redirect URIs, no secret; its
	// client_id alone cannot get client credentials.
	out, err = runCmd(t, vars, "", "client", "add", "--name", "spa", "--public",
		"--redirect-uri", "https://app.example.com/cb", "--redirect-uri", "http://127.0.0.1:3000/cb")
	pub := regexp.MustCompile(`created client (cl_\S+) \(spa\), roles none\nredirect URIs: https://app.example.com/cb http://127.0.0.1:3000/cb\npublic client: no secret`).FindStringSubmatch(out)
	if err != nil || pub == nil || strings.Contains(out, "client_secret") {
		t.Fatalf("client add --public = %v %q", err, out)
	}
	if code, _ := grant(t, addr, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {pub[1]}}); code != 400 {
		t.Errorf("client credentials of a public client = %d, want 400 unauthorized_client", code)
	}
	for _, bad := range []string{"http://app.example.com/cb", "https://app.example.com/cb#x", "javascript:alert(1)"} {
		if _, err := runCmd(t, vars, "", "client", "add", "--name", "x", "--redirect-uri", bad); err == nil || !strings.Contains(err.Error(), "body.redirect_uris.0") {
			t.Errorf("client add --redirect-uri %s = %v, want a refusal naming it", bad, err)
		}
	}
}
