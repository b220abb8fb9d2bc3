package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func send(t *testing.T, method, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	e := apitest.New(t, apitest.Options{CORSOrigins: []string{app, "http://localhost:4200"}})
	u := e.CreateUser(t, "browser@example.com", "user")
	tok := e.Token(t, u)
	preflight := map[string]string{
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}

	t.Run("allowed origin preflight", func(t *testing.T) {
		h := map[string]string{"Origin": app}
		for k, v := range preflight {
			h[k] = v
		}
		resp := send(t, "OPTIONS", e.URL+"/notes", h)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("preflight = %d %v", resp.StatusCode, resp.Header)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("credentials allowed")
		}
	})
	t.Run("allowed origin request", func(t *testing.T) {
		resp := send(t, "GET", e.URL+"/identify/me", map[string]string{"Origin": app, "Authorization": "Bearer " + tok})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") ||
			!strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("request = %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("allowed origin, refused request keeps CORS headers", func(t *testing.T) {
		resp := send(t, "GET", e.URL+"/identify/me", map[string]string{"Origin": app})
		if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != app {
			t.Errorf("401 = %d %v (a browser app must be able to read the 401)", resp.StatusCode, resp.Header)
		}
	})
	for _, other := range []string{"https://evil.example.com", "null", "https://app.example.com.evil.com"} {
		t.Run("other origin "+other, func(t *testing.T) {
			h := map[string]string{"Origin": other}
			for k, v := range preflight {
				h[k] = v
			}
			for _, resp := range []*http.Response{
				send(t, "OPTIONS", e.URL+"/notes", h),
				send(t, "GET", e.URL+"/identify/me", map[string]string{"Origin": other, "Authorization": "Bearer " + tok}),
			} {
				for k := range resp.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("%s got %s: %v", other, k, resp.Header)
					}
				}
			}
		})
	}
}

func TestNoCORSHeadersWhenUnconfigured(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	resp := send(t, "GET", e.URL+"/healthz", map[string]string{"Origin": "https://app.example.com"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header without configuration: %v", resp.Header)
	}
}

// A database that goes away makes data operations answer 503 with
// Retry-After, never 500; operations that need no database still work.
func TestDatabaseOutageIs503(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "outage@example.com", "user")
	tok := e.Token(t, u)
	var name string
	if err := e.Pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(context.Background(), strings.Replace(e.DatabaseURL, "/"+name, "/postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/notes", "/notes/document/src/x", "/readyz"} {
		resp := send(t, "GET", e.URL+path, map[string]string{"Authorization": "Bearer " + tok})
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s without a database = %d %v, want 503 with Retry-After", path, resp.StatusCode, resp.Header)
		}
	}
	if resp := send(t, "GET", e.URL+"/identify/me", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Errorf("identify/me without a database = %d, want 200 (it needs only the token)", resp.StatusCode)
	}
}
