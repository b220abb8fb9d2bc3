package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/tools/internal/loadtest"
)

// process is a server under test: one OS process listening on 127.0.0.1.
type process struct {
	name string
	addr string
	cmd  *exec.Cmd
	log  string // where its stderr goes
	done chan struct{}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) url(path string) string { return "http://" + p.addr + path }

// stop sends SIGTERM and waits for the process, bounded.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rss is the process's resident set size in bytes.
func (p *process) rss() int64 { return loadtest.RSS(p.pid()) }

func start(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &process{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(append(os.Environ(), env...), "BENCH_ADDR="+p.addr, "ROLEGATE_ADDR="+p.addr)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx, 120*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the address until it answers HTTP.
func (p *process) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		path := "/readyz"
		if p.name != "rolegate" {
			path = "/identify/me" // any answer will do
		}
		resp, err := http.Get(p.url(path))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || p.name != "rolegate" {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start; its log: %s\n%s", p.name, p.log, loadtest.Tail(p.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v; its log: %s\n%s", p.name, limit, p.log, loadtest.Tail(p.log))
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Seed data.
const (
	adminEmail    = "admin@localhost"
	adminPassword = "bench-http admin password"
	userEmail     = "bench@example.com"
	userPassword  = "bench-http user password"
	seedDocument  = "bench.pdf"
	seedNotes     = 10
	seedUsers     = 20
	// issuer is the iss of rolegate's tokens (ROLEGATE_JWT_ISSUER), which
	// the textbook stack and the token minter pin: rolegate's default, its
	// public URL, would name a port chosen at start.
	issuer = "rolegate"
)

// startRolegate starts `rolegate serve` as `make run` does, with a data
// directory of its own: the embedded PostgreSQL, EdDSA signing, the access
// log at info. Its log goes to a file, as a deployment's would. Loopback is
// a trusted proxy, so that the login flood can come from many addresses.
func startRolegate(ctx context.Context, bin, dir string) (*process, error) {
	env := []string{
		"ROLEGATE_DATA_DIR=" + filepath.Join(dir, "data"),
		"ROLEGATE_ADMIN_PASSWORD=" + adminPassword,
		"ROLEGATE_TRUSTED_PROXIES=127.0.0.1/32",
		"ROLEGATE_JWT_ISSUER=" + issuer,
	}
	if profiling {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		env = append(env, "ROLEGATE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(port))
		debugAddr = "127.0.0.1:" + strconv.Itoa(port)
	}
	return start(ctx, "rolegate", filepath.Join(dir, "rolegate.log"), env, bin, "serve")
}

// profiling is set when rolegate is built with the pprof tag and serves
// /debug/pprof/ on debugAddr.
var (
	profiling bool
	debugAddr string
)

// startStub starts this program again as the bare or textbook server.
func startStub(ctx context.Context, kind, dir string, body []byte, jwks []byte) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env := []string{"BENCH_BODY=" + string(body), "BENCH_JWKS=" + string(jwks)}
	return start(ctx, kind, filepath.Join(dir, kind+".log"), env, self, "-serve", kind)
}

// seeded is what seedRolegate made.
type seeded struct {
	token  string // an access token of the bench user
	meBody []byte // GET /identify/me's body with that token
	jwks   []byte
	form   string // the bench user's password grant, for the login flood
	// clientID is the public client the code flow's sign-ins are for,
	// registered with signInCallback.
	clientID string
}

// seedRolegate creates seedUsers users, the last of them the bench user
// with seedNotes notes on seedDocument (and as many on other documents),
// and the public client of the code flow's sign-ins, through the API.
func seedRolegate(ctx context.Context, rg *process) (seeded, error) {
	var s seeded
	admin, err := login(ctx, rg, adminEmail, adminPassword)
	if err != nil {
		return s, err
	}
	body := fmt.Sprintf(`{"name":"bench-http","public":true,"redirect_uris":[%q]}`, signInCallback)
	b, err := call(ctx, rg, "POST", "/clients", admin, body, http.StatusCreated)
	if err != nil {
		return s, err
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ClientID == "" {
		return s, fmt.Errorf("POST /clients: no client_id in %s", b)
	}
	s.clientID = c.ClientID
	for i := range seedUsers {
		email := fmt.Sprintf("user%d@example.com", i)
		if i == seedUsers-1 {
			email = userEmail
		}
		body := fmt.Sprintf(`{"email":%q,"password":%q,"roles":["user"]}`, email, userPassword)
		if _, err := call(ctx, rg, "POST", "/users", admin, body, http.StatusCreated); err != nil {
			return s, err
		}
	}
	if s.token, err = login(ctx, rg, userEmail, userPassword); err != nil {
		return s, err
	}
	for i := range 2 * seedNotes {
		src := seedDocument
		if i%2 == 1 {
			src = "other-" + strconv.Itoa(i) + ".pdf"
		}
		body := fmt.Sprintf(`{"document_src":%q,"title":"note %d","body":"a note of a few words, as notes are"}`, src, i)
		if _, err := call(ctx, rg, "POST", "/notes", s.token, body, http.StatusCreated); err != nil {
			return s, err
		}
	}
	if s.meBody, err = call(ctx, rg, "GET", "/identify/me", s.token, "", http.StatusOK); err != nil {
		return s, err
	}
	if s.jwks, err = call(ctx, rg, "GET", "/.well-known/jwks.json", "", "", http.StatusOK); err != nil {
		return s, err
	}
	s.form = url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {userPassword}}.Encode()
	return s, nil
}

func login(ctx context.Context, rg *process, email, password string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}}
	req, _ := http.NewRequestWithContext(ctx, "POST", rg.url("/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b, err := do(req, http.StatusOK)
	if err != nil {
		return "", err
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("login %s: no access token in %s", email, b)
	}
	return t.AccessToken, nil
}

func call(ctx context.Context, rg *process, method, path, token, body string, want int) ([]byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, rg.url(path), r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(req, want)
}

func do(req *http.Request, want int) ([]byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s = %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, b)
	}
	return b, nil
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

// cut splits "key: value" into trimmed key and value.
func cut(s, sep string) (string, string, bool) {
	k, v, ok := strings.Cut(s, sep)
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}
