package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
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

// start runs the example through run against rolegate at rolegateURL and
// returns its base URL once /healthz answers; it stops when the test ends.
func start(t *testing.T, rolegateURL string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"ROLEGATE_URL": rolegateURL, "ADDR": addr, "ROLEGATE_AUDIENCE": apitest.Audience}
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
	base := start(t, e.URL)

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
		if tt.name == "health is public" {
			path = "/healthz"
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

// run refuses to start without rolegate's URL, or with a rolegate it
// cannot reach.
func TestRunNeedsRolegate(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{},
		{"ROLEGATE_URL": "http://127.0.0.1:1", "ADDR": "127.0.0.1:0"},
	} {
		if err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard); err == nil {
			t.Errorf("run with %v started", env)
		}
	}
}
