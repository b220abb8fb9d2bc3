package metrics_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/metrics"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/token"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// routes stand in for the gate and the handlers: each path names its
// operation (or none) and answers as the real one would.
var routes = map[string]struct {
	op     string
	handle func(w http.ResponseWriter)
}{
	"/me":         {"getMe", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"id":1}`)) }},
	"/me/silent":  {"getMe", func(http.ResponseWriter) {}}, // net/http answers 200
	"/notes":      {"listNotes", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) }},
	"/token/ok":   {"createToken", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"access_token":"t"}`)) }},
	"/token/pw":   {"createToken", oauthError(400, oauth.InvalidGrant)},
	"/token/cred": {"createToken", oauthError(401, oauth.InvalidClient)},
	"/token/slow": {"createToken", oauthError(429, oauth.SlowDown)},
	"/token/busy": {"createToken", func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }},
	"/token/odd":  {"createToken", oauthError(400, "not_a_code")},
	// A long description cuts the sniffed body; the code comes first.
	"/token/long": {"createToken", func(w http.ResponseWriter) {
		oauth.Write(w, &oauth.Error{Status: 400, Code: oauth.InvalidScope, Description: strings.Repeat("x", 5000)})
	}},
	"/stranger": {"notInTheSpec", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }},
}

func oauthError(status int, code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		oauth.Write(w, &oauth.Error{Status: status, Code: code, Description: "Refused."})
	}
}

func fakeGate(w http.ResponseWriter, r *http.Request) {
	rt, ok := routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r) // as the router does: no operation
		return
	}
	httplog.SetOperation(r.Context(), rt.op)
	rt.handle(w)
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Body.String()
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for l := range strings.SplitSeq(text, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("no line %q", l)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

func TestMiddlewareCountsByOperation(t *testing.T) {
	m := metrics.New(metrics.Deps{Operations: []string{"getMe", "listNotes", "createToken", "deleteNote"}})
	h := httplog.Middleware(slog.New(slog.DiscardHandler), m.Middleware(http.HandlerFunc(fakeGate)))
	for _, path := range []string{
		"/me", "/me", "/me/silent", "/notes", "/no/such/path", "/no/such/path", "/stranger",
		"/token/ok", "/token/ok", "/token/pw", "/token/cred", "/token/slow", "/token/busy", "/token/odd", "/token/long",
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	text := scrape(t, m)
	wantLines(t, text,
		`rolegate_http_requests_total{operation="getMe",status="200"} 3`,
		`rolegate_http_requests_total{operation="listNotes",status="429"} 1`,
		`rolegate_http_requests_total{operation="unrouted",status="404"} 2`,
		// An id the spec does not have adds no label value.
		`rolegate_http_requests_total{operation="unrouted",status="418"} 1`,
		`rolegate_http_requests_total{operation="createToken",status="200"} 2`,
		`rolegate_http_requests_total{operation="createToken",status="400"} 3`,
		`rolegate_http_request_duration_seconds_count{operation="getMe"} 3`,
		`rolegate_http_request_duration_seconds_count{operation="unrouted"} 3`,
		// Every operation has its series from the start, at zero.
		`rolegate_http_request_duration_seconds_count{operation="deleteNote"} 0`,
		`rolegate_throttled_requests_total{operation="listNotes"} 1`,
		`rolegate_throttled_requests_total{operation="createToken"} 1`,
		`rolegate_throttled_requests_total{operation="getMe"} 0`,
		`rolegate_logins_total{outcome="success"} 2`,
		`rolegate_logins_total{outcome="invalid_grant"} 1`,
		`rolegate_logins_total{outcome="invalid_client"} 1`,
		`rolegate_logins_total{outcome="invalid_scope"} 1`,
		`rolegate_logins_total{outcome="invalid_request"} 1`, // the unknown code
		`rolegate_logins_total{outcome="throttled"} 1`,
		`rolegate_logins_total{outcome="unavailable"} 1`,
		`rolegate_logins_total{outcome="error"} 0`,
	)
	for _, bad := range []string{"/no/such/path", "notInTheSpec", "not_a_code"} {
		if strings.Contains(text, bad) {
			t.Errorf("the metrics name %q: labels must come from the spec and RFC 6749 only", bad)
		}
	}
}

func TestHandlerServesOnlyMetrics(t *testing.T) {
	m := metrics.New(metrics.Deps{})
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/metrics", 200},
		{"POST", "/metrics", 405},
		{"GET", "/", 404},
		{"GET", "/debug/pprof/", 404},
	} {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}

// The collectors over the rest of the stack read the real things.
func TestCollectors(t *testing.T) {
	pool := testdb.New(t)
	hasher := password.NewPool(2, 3, password.Params{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	defer hasher.Close()
	tokens, err := token.New(token.Config{Secret: make([]byte, 32), Issuer: "i", Audience: "a", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := tokens.Issue(token.Subject{UserID: 1, Roles: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := tokens.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}
	revoked := revocation.New(nil)
	if err := revoked.CatchUp(context.Background(), db.New(pool)); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Deps{Pool: pool, Hasher: hasher, Tokens: tokens, Revocations: revoked})

	text := scrape(t, m)
	wantLines(t, text,
		"rolegate_password_hash_workers 2",
		"rolegate_password_hash_workers_busy 0",
		"rolegate_password_hash_queue_capacity 3",
		"rolegate_password_hash_queue_length 0",
		"rolegate_token_cache_hits_total 2",
		"rolegate_token_cache_misses_total 1",
		// Follow has not run: the feed is down until it does.
		"rolegate_revocation_feed_up 0",
		"rolegate_db_pool_max_connections "+strconv.Itoa(int(pool.Stat().MaxConns())),
		"rolegate_db_pool_acquired_connections 0",
	)
	for _, name := range []string{
		"rolegate_revocation_feed_lag_seconds ", "rolegate_db_pool_idle_connections ", "rolegate_db_pool_total_connections ",
		"rolegate_db_pool_acquires_total ", "rolegate_db_pool_acquire_duration_seconds_total ",
		"rolegate_db_pool_empty_acquires_total ", "rolegate_db_pool_canceled_acquires_total ",
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("no %s", name)
		}
	}
}

// TestStepUps: the step-ups the gate asks for are counted by operation,
// an operation the metrics do not know of as unrouted.
func TestStepUps(t *testing.T) {
	m := metrics.New(metrics.Deps{Operations: []string{"deleteUser"}})
	m.StepUp("deleteUser")
	m.StepUp("deleteUser")
	m.StepUp("nosuch")
	wantLines(t, scrape(t, m),
		`rolegate_stepups_required_total{operation="deleteUser"} 2`,
		`rolegate_stepups_required_total{operation="unrouted"} 1`,
	)
}
