package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// grant posts a form to /token or /token/revoke on addr and decodes the
// answer.
func grant(t *testing.T, addr, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := apitest.ContractClient(t).PostForm("http://"+addr+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// send sends a request with a bearer token and a JSON body and returns the
// status.
func send(t *testing.T, method, addr, path, tok, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refusedWithin polls addr until the access token is refused, and returns
// how long that took; it fails the test past limit.
func refusedWithin(t *testing.T, addr, tok string, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		code, _ := get(t, addr, "/identify/me", tok)
		if code == http.StatusUnauthorized {
			return time.Since(since)
		}
		if code != http.StatusOK {
			t.Fatalf("GET /identify/me on the other replica = %d", code)
		}
		if time.Since(since) > limit {
			t.Fatalf("the other replica still accepts the token %v after the change", limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// A change made through one replica reaches the other, a separate process
// on the same database, within a second, as its LISTEN connection hears of
// it; a replica started later still refuses what was revoked before.
func TestRevocationsReachTheOtherReplica(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL":            testdb.EmptyURL(t),
		"ROLEGATE_JWT_SECRET":     strings.Repeat("r", 32),
		"ROLEGATE_ADMIN_PASSWORD": "first admin password",
		"ROLEGATE_PUBLIC_URL":     publicURL,
	}
	a := startProcess(t, vars)
	waitReady(t, a.addr, 60*time.Second, a.logs)
	b := startProcess(t, vars)
	waitReady(t, b.addr, 60*time.Second, b.logs)

	admin := loginOK(t, a.addr, "admin@localhost", "first admin password")
	if code := send(t, "POST", a.addr, "/users", admin, `{"email":"moved@example.com","password":"a long enough password","roles":["user"]}`); code != 201 {
		t.Fatalf("create user = %d", code)
	}
	code, tok := grant(t, a.addr, "/token", url.Values{"grant_type": {"password"}, "username": {"moved@example.com"}, "password": {"a long enough password"}})
	if code != 200 {
		t.Fatalf("login = %d %v", code, tok)
	}
	var users []struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}
	_, body := get(t, a.addr, "/users", admin)
	var page struct {
		Items json.RawMessage `json:"items"`
	}
	_ = json.Unmarshal([]byte(body), &page)
	_ = json.Unmarshal(page.Items, &users)
	i := slices.IndexFunc(users, func(u struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}) bool {
		return u.Email == "moved@example.com"
	})
	if i < 0 {
		t.Fatalf("user not listed: %s", body)
	}
	rolesPath := "/users/" + strconv.FormatInt(users[i].ID, 10) + "/roles"

	// 50 changes of roles, each made on A and measured on B.
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	var delays []time.Duration
	for n := range 50 {
		if code, _ := get(t, b.addr, "/identify/me", access); code != 200 {
			t.Fatalf("round %d: B refuses a fresh token: %d", n, code)
		}
		roles := `{"roles":["user"]}`
		if n%2 == 0 {
			roles = `{"roles":["user","system"]}`
		}
		if code := send(t, "PUT", a.addr, rolesPath, admin, roles); code != 200 {
			t.Fatalf("round %d: change roles = %d", n, code)
		}
		delays = append(delays, refusedWithin(t, b.addr, access, time.Now(), time.Second))
		code, next := grant(t, a.addr, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if code != 200 {
			t.Fatalf("round %d: refresh = %d %v", n, code, next)
		}
		access, refresh = next["access_token"].(string), next["refresh_token"].(string)
	}
	// The end of a session, likewise.
	if code, _ := grant(t, a.addr, "/token/revoke", url.Values{"token": {refresh}}); code != 200 {
		t.Fatalf("revoke = %d", code)
	}
	delays = append(delays, refusedWithin(t, b.addr, access, time.Now(), time.Second))

	slices.Sort(delays)
	p := func(q float64) time.Duration { return delays[int(q*float64(len(delays)-1))] }
	t.Logf("revocation reached the other replica over %d changes: p50 %v, p99 %v, max %v", len(delays), p(0.5), p(0.99), delays[len(delays)-1])

	// A replica started after the revocation refuses the token from the
	// first request.
	b.stop(t, syscall.SIGTERM)
	c := startProcess(t, vars)
	waitReady(t, c.addr, 60*time.Second, c.logs)
	if code, _ := get(t, c.addr, "/identify/me", access); code != http.StatusUnauthorized {
		t.Errorf("a restarted replica answers %d to a token revoked before it started, want 401", code)
	}
}

// The per-request path reads no database: with the database stopped, a
// valid token still gets 200 and a token revoked before the stop still gets
// 401, while /readyz says the replica is not ready.
func TestTokensAreCheckedWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ROLEGATE_DATA_DIR": t.TempDir(), "DATABASE_URL": "", "ROLEGATE_ADMIN_PASSWORD": "first admin password"}
	p := startProcess(t, vars)
	waitReady(t, p.addr, 90*time.Second, p.logs)
	form := url.Values{"grant_type": {"password"}, "username": {"admin@localhost"}, "password": {"first admin password"}}
	_, kept := grant(t, p.addr, "/token", form)
	_, gone := grant(t, p.addr, "/token", form)
	if code, _ := grant(t, p.addr, "/token/revoke", url.Values{"token": {gone["refresh_token"].(string)}}); code != 200 {
		t.Fatalf("revoke = %d", code)
	}

	// Stop PostgreSQL under rolegate's feet (fast shutdown of the
	// postmaster, whose pid is the first line of postmaster.pid).
	var dataDir string
	for _, l := range p.logs.logLines(t) {
		if l["msg"] == "embedded PostgreSQL started" {
			dataDir, _ = l["data_dir"].(string)
		}
	}
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("the embedded cluster's pid (data dir %q): %v", dataDir, err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("PostgreSQL did not stop")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if code, body := get(t, p.addr, "/identify/me", kept["access_token"].(string)); code != 200 {
		t.Errorf("valid token with the database stopped = %d %s, want 200", code, body)
	}
	if code, _ := get(t, p.addr, "/identify/me", gone["access_token"].(string)); code != http.StatusUnauthorized {
		t.Errorf("token revoked before the stop = %d, want 401", code)
	}
	if code, _ := get(t, p.addr, "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database stopped = %d, want 503", code)
	}
}
