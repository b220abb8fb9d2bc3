package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/sdk"
	"github.com/rolegate/rolegate/token"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// syncBuffer collects the service's log.
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

// feedClient registers the example's machine client on e, as `rolegate
// client add --name reports --roles resource-server` does, through the API
// with an admin's token.
func feedClient(t *testing.T, e *apitest.Env, admin string) (id, secret string) {
	t.Helper()
	r := do(t, "POST", e.URL+"/clients", admin, `{"name": "reports", "roles": ["resource-server"]}`)
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(r.body), &c); err != nil || r.status != 201 {
		t.Fatalf("POST /clients = %d %s", r.status, r.body)
	}
	return c.ID, c.Secret
}

// start runs the example through run against rolegate at rolegateURL, as
// the machine client id, and returns its base URL once /healthz answers;
// it stops when the test ends.
func start(t *testing.T, rolegateURL, id, secret string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"ROLEGATE_URL": rolegateURL, "ADDR": addr, "ROLEGATE_AUDIENCE": apitest.Audience,
		"ROLEGATE_CLIENT_ID": id, "ROLEGATE_CLIENT_SECRET": secret}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("run returned %v; log:\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not answer within 10s; log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, bearer, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// kid returns the kid of a token's header.
func kid(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// The example, run as `go run ./examples/reports` runs it, against a live
// rolegate: rolegate's tokens pass where the example's spec admits their
// roles and get 403 where it does not; tokens rolegate did not issue for
// this audience get 401; and a rotation of rolegate's keys breaks nothing.
func TestExampleAgainstRolegate(t *testing.T) {
	// rolegate's clock starts 7 minutes back, so that a key made by a
	// rotation signs (6 minutes after it is published) once the clock is
	// brought to the present, which the example's is.
	var offset atomic.Int64
	offset.Store(int64(-7 * time.Minute))
	e := apitest.New(t, apitest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	ctx := context.Background()
	reader := e.CreateUser(t, "reader@example.com", "user")
	boss := e.CreateUser(t, "boss@example.com", "admin")
	outsider := e.CreateUser(t, "outsider@example.com", "outsider")
	id, secret := feedClient(t, e, e.Token(t, boss))
	base := start(t, e.URL, id, secret)

	login, err := sdk.Token(ctx, e.URL, reader.Email, reader.Password)
	if err != nil {
		t.Fatal(err)
	}
	userToken, adminToken := login.AccessToken, e.Token(t, boss)

	// Tokens rolegate never issued for this service: another audience,
	// and a foreign key under rolegate's kid.
	ks, _, err := e.Keys.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := token.New(token.Config{Keys: &ks, Issuer: apitest.Issuer, Audience: "another-service", TTL: time.Minute, Now: e.Now})
	if err != nil {
		t.Fatal(err)
	}
	otherAudience, _, err := other.Issue(token.Subject{UserID: boss.ID, Email: boss.Email, Roles: boss.Roles})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := token.GenerateKey(token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	foreign.ID = ks.Signing.ID
	forger, err := token.New(token.Config{Keys: &token.KeySet{Signing: foreign}, Issuer: apitest.Issuer, Audience: apitest.Audience, TTL: time.Minute, Now: e.Now})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Issue(token.Subject{UserID: boss.ID, Email: boss.Email, Roles: boss.Roles})
	if err != nil {
		t.Fatal(err)
	}

	const (
		realm    = `Bearer realm="rolegate"`
		invalid  = realm + `, error="invalid_token"`
		forbids  = realm + `, error="insufficient_scope"`
		newTitle = `{"title": "Q3"}`
	)
	tests := []struct {
		name, method, token, body string
		status                    int
		challenge                 string
	}{
		{"health is public", "GET", "", "", 200, ""},
		{"readiness is public", "GET", "", "", 200, ""},
		{"no token", "GET", "", "", 401, realm},
		{"a user reads", "GET", userToken, "", 200, ""},
		{"a user may not write", "POST", userToken, newTitle, 403, forbids},
		{"an admin writes", "POST", adminToken, newTitle, 201, ""},
		{"an admin reads", "GET", adminToken, "", 200, ""},
		{"a role the spec does not name", "GET", e.Token(t, outsider), "", 403, forbids},
		{"another audience", "GET", otherAudience, "", 401, invalid},
		{"a foreign key under rolegate's kid", "POST", forged, newTitle, 401, invalid},
		{"not a token", "GET", "garbage", "", 401, invalid},
		{"a body the spec refuses", "POST", adminToken, `{"title": ""}`, 400, ""},
	}
	for _, tt := range tests {
		path := "/reports"
		switch tt.name {
		case "health is public":
			path = "/healthz"
		case "readiness is public":
			path = "/readyz"
		}
		r := do(t, tt.method, base+path, tt.token, tt.body)
		if r.status != tt.status || r.header.Get("WWW-Authenticate") != tt.challenge {
			t.Errorf("%s: %s %s = %d %q %s, want %d %q", tt.name, tt.method, path, r.status, r.header.Get("WWW-Authenticate"), r.body, tt.status, tt.challenge)
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", tt.name, r.header.Get("Content-Type"))
		}
	}
	if r := do(t, "GET", base+"/reports", userToken, ""); !strings.Contains(r.body, `"author":"boss@example.com"`) {
		t.Errorf("the report as a user reads it: %s", r.body)
	}

	// A rotation: the new key is published now and signs once the clock
	// is brought to the present.
	oldKid := ks.Signing.ID
	if _, _, err := e.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	offset.Store(0)
	if err := e.SyncKeys(ctx); err != nil {
		t.Fatal(err)
	}
	rotated, err := sdk.Token(ctx, e.URL, boss.Email, boss.Password)
	if err != nil {
		t.Fatal(err)
	}
	if kid(t, rotated.AccessToken) == oldKid {
		t.Fatal("the rotation did not change the signing key")
	}
	if r := do(t, "POST", base+"/reports", rotated.AccessToken, `{"title": "after the rotation"}`); r.status != 201 {
		t.Errorf("a token of the new key: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/reports", e.Token(t, reader), ""); r.status != 200 {
		t.Errorf("a user's token of the new key: %d %s", r.status, r.body)
	}
	// The old key's tokens are good until they expire.
	if r := do(t, "GET", base+"/reports", userToken, ""); r.status != 200 {
		t.Errorf("a token of the old key after the rotation: %d %s", r.status, r.body)
	}
}

// run refuses to start without rolegate's URL or the feed's client, or
// with a rolegate it cannot reach.
func TestRunNeedsRolegate(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{},
		{"ROLEGATE_URL": "http://127.0.0.1:1", "ADDR": "127.0.0.1:0"},
		{"ROLEGATE_URL": "http://127.0.0.1:1", "ADDR": "127.0.0.1:0", "ROLEGATE_CLIENT_ID": "cl_x", "ROLEGATE_CLIENT_SECRET": "s"},
	} {
		if err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard); err == nil {
			t.Errorf("run with %v started", env)
		}
	}
}

// proxy stands between the example and rolegate, so that a test can take
// rolegate off the network and bring it back on the same address.
type proxy struct {
	t      *testing.T
	target string // rolegate's host:port
	addr   string // the proxy's
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// setTarget sets the URL the proxy forwards to.
func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = strings.TrimPrefix(target, "http://")
}

// URL is rolegate's URL through the proxy.
func (p *proxy) URL() string { return "http://" + p.addr }

// start listens (again) and forwards every connection to the target.
func (p *proxy) start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection through it.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// within polls f every 20 ms until it holds, and fails after d.
func within(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// rolegate's revocations reach the example within a second, through its
// revocation feed: a demoted admin's token, a logged-out session's token,
// a machine client's token revoked by itself;
// while the feed is down (rolegate off the network) /readyz says so, and
// once rolegate is back it is ready again and has caught up with what was
// revoked meanwhile.
func TestExampleRefusesRevokedTokens(t *testing.T) {
	// The example reaches rolegate through a proxy, at the URL rolegate
	// publishes.
	p := newProxy(t)
	e := apitest.New(t, apitest.Options{PublicURL: p.URL()})
	p.setTarget(e.URL)
	ctx := context.Background()
	root := e.Token(t, e.CreateUser(t, "root@example.com", "admin"))
	boss := e.CreateUser(t, "boss@example.com", "admin")
	reader := e.CreateUser(t, "reader@example.com", "user")
	id, secret := feedClient(t, e, root)
	base := start(t, p.URL(), id, secret)
	// Ready as soon as it serves: resource.New returns once its feeds
	// have caught up.
	if r := do(t, "GET", base+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("/readyz = %d %s at the start", r.status, r.body)
	}

	// A demoted admin: the token of before writes no more.
	login, err := sdk.Token(ctx, e.URL, boss.Email, boss.Password)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "POST", base+"/reports", login.AccessToken, `{"title": "Q3"}`); r.status != 201 {
		t.Fatalf("an admin writes: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", fmt.Sprintf("%s/users/%d/roles", e.URL, boss.ID), root, `{"roles": ["user"]}`); r.status != 200 {
		t.Fatalf("demoting: %d %s", r.status, r.body)
	}
	took := within(t, time.Second, "the demoted admin's token refused", func() bool {
		return do(t, "POST", base+"/reports", login.AccessToken, `{"title": "Q4"}`).status == 401
	})
	t.Logf("a change of roles reached the example in %v", took)

	// A logout (RFC 7009 with the refresh token): the session's access
	// token reads no more.
	session, err := sdk.Token(ctx, e.URL, reader.Email, reader.Password)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", base+"/reports", session.AccessToken, ""); r.status != 200 {
		t.Fatalf("a user reads: %d %s", r.status, r.body)
	}
	revoke(t, e.URL, *session.RefreshToken)
	took = within(t, time.Second, "the logged-out session's token refused", func() bool {
		return do(t, "GET", base+"/reports", session.AccessToken, "").status == 401
	})
	t.Logf("a logout reached the example in %v", took)

	// A machine client's token, of no session, revoked on its own (RFC
	// 7009): refused by its jti.
	r := do(t, "POST", e.URL+"/clients", root, `{"name": "reader bot", "roles": ["user"]}`)
	var bot struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(r.body), &bot); err != nil || r.status != 201 {
		t.Fatalf("POST /clients = %d %s", r.status, r.body)
	}
	resp, err := http.PostForm(e.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {bot.ID}, "client_secret": {bot.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	var botToken struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&botToken)
	resp.Body.Close()
	if err != nil || botToken.AccessToken == "" {
		t.Fatalf("client credentials: %d %v", resp.StatusCode, err)
	}
	if r := do(t, "GET", base+"/reports", botToken.AccessToken, ""); r.status != 200 {
		t.Fatalf("a client reads: %d %s", r.status, r.body)
	}
	revoke(t, e.URL, botToken.AccessToken)
	took = within(t, time.Second, "the revoked client token refused", func() bool {
		return do(t, "GET", base+"/reports", botToken.AccessToken, "").status == 401
	})
	t.Logf("a client token's revocation reached the example in %v", took)

	// rolegate off the network: not ready, saying why; a session ended
	// meanwhile is refused once it is back.
	later, err := sdk.Token(ctx, e.URL, reader.Email, reader.Password)
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	var why string
	within(t, 2*time.Second, "/readyz answering 503, saying why, with rolegate gone", func() bool {
		r := do(t, "GET", base+"/readyz", "", "")
		why = r.body
		return r.status == 503 && strings.Contains(why, "revocation feed") && strings.Contains(why, "memberships feed")
	})
	revoke(t, e.URL, *later.RefreshToken)
	p.start()
	within(t, 10*time.Second, "/readyz answering 200 with rolegate back", func() bool {
		return do(t, "GET", base+"/readyz", "", "").status == 200
	})
	if r := do(t, "GET", base+"/reports", later.AccessToken, ""); r.status != 401 {
		t.Errorf("a session ended while the feed was down, once it is back: %d %s", r.status, r.body)
	}
}

// revoke logs a session out with its refresh token (RFC 7009).
func revoke(t *testing.T, rolegateURL, refresh string) {
	t.Helper()
	resp, err := http.PostForm(rolegateURL+"/token/revoke", url.Values{"token": {refresh}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /token/revoke = %d", resp.StatusCode)
	}
}
