package main

// The process and wrk plumbing of this program: one rolegate, one route
// at a time; wrk's scripts and figures are package loadtest's, as
// tools/benchhttp's are.

import (
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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/tools/internal/loadtest"
)

// process is rolegate under test, listening on 127.0.0.1.
type process struct {
	addr string
	cmd  *exec.Cmd
	log  string // where its stderr goes
	done chan struct{}
}

func (p *process) url(path string) string { return "http://" + p.addr + path }

// stop sends SIGINT and waits for the process, bounded.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rss is the process's resident set size in bytes.
func (p *process) rss() int64 { return loadtest.RSS(p.cmd.Process.Pid) }

// startRolegate starts `rolegate serve` as `make run` does (embedded
// PostgreSQL under dir, EdDSA, the access log at info, to a file), with
// loopback a trusted proxy so that logins can come from many addresses.
func startRolegate(ctx context.Context, bin, dir string) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &process{addr: addr, log: filepath.Join(dir, "rolegate.log"), done: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(),
		"ROLEGATE_ADDR="+addr,
		"ROLEGATE_DATA_DIR="+filepath.Join(dir, "data"),
		"ROLEGATE_ADMIN_PASSWORD="+adminPassword,
		"ROLEGATE_TRUSTED_PROXIES=127.0.0.1/32",
	)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := http.Get(p.url("/readyz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("rolegate exited at start; its log: %s\n%s", p.log, loadtest.Tail(p.log))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("rolegate not ready after 2m; its log: %s\n%s", p.log, loadtest.Tail(p.log))
		}
	}
}

// login returns an access token of email through the password grant.
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

// get answers GET path with token, which must be 200.
func get(ctx context.Context, rg *process, path, token string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", rg.url(path), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(req, http.StatusOK)
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
		return nil, fmt.Errorf("%s %s = %d, want %d: %s", req.Method, req.URL, resp.StatusCode, want, b)
	}
	return b, nil
}

// wrk runs the wrk binary with the scripts above.
type wrk struct {
	dir     string
	threads int
	conns   int
}

func newWrk(dir string, threads, conns int) (*wrk, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("wrk is not installed (make bench-scale installs it with apt-get): %w", err)
	}
	for name, lua := range map[string]string{"report.lua": loadtest.ReportLua, "login.lua": loadtest.LoginLua + loadtest.ReportLua} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(lua), 0o600); err != nil {
			return nil, err
		}
	}
	return &wrk{dir: dir, threads: threads, conns: conns}, nil
}

// result is one wrk run's figures.
type result = loadtest.Figures

// run loads rg's route for d.
func (w *wrk) run(ctx context.Context, rg *process, rt route, d time.Duration) (result, error) {
	args := []string{"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(max(1, int(d.Seconds()))) + "s", "--timeout", "10s"}
	if rt.form != "" {
		args = append(args, "-s", filepath.Join(w.dir, "login.lua"), rg.url(rt.path), "--", rt.form)
	} else {
		args = append(args, "-H", "Authorization: Bearer "+rt.token, "-s", filepath.Join(w.dir, "report.lua"), rg.url(rt.path))
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return loadtest.ParseFigures(out.String())
}
