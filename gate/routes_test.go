package gate_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/token"
)

// TestRoutes: given Routes, the gate hands each request to the handler
// registered for its operation's pattern, and refuses to start when an
// operation of the spec has none.
func TestRoutes(t *testing.T) {
	spec, err := access.LoadSpec(t.Context(), rolegate.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Config{Secret: []byte("routes-secret-routes-secret-rout"), Issuer: "i", Audience: "a", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := tokens.Issue(token.Subject{UserID: 1, Email: "a@example.com", Roles: []string{"user"}, SessionID: "00000000-0000-4000-8000-000000000001", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	// all registers a handler for every operation, answering its pattern.
	all := func(skip string) *gate.Routes {
		rt := gate.NewRoutes()
		for _, rule := range spec.Policy.Rules {
			pattern := rule.Method + " " + rule.Path
			if pattern == skip {
				continue
			}
			rt.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(r.Pattern + " " + r.PathValue("src"))) // as the mux or the gate set it
			})
		}
		return rt
	}

	tests := []struct {
		name    string
		routes  *gate.Routes
		wantErr string
	}{
		{name: "every operation has a handler", routes: all("")},
		{name: "one has none", routes: all("GET /identify/me"), wantErr: "operation getMe has no handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := gate.New(spec, gate.Options{Verifier: tokens}, tt.routes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// A path without parameters, requested as written, is looked up
			// directly; the rest go through the mux, which must answer as it
			// always has.
			for _, r := range []struct {
				method, target string
				code           int
				body           string
			}{
				{"GET", "/identify/me", 200, "GET /identify/me "},
				{"GET", "/notes/document/src/a.pdf", 200, "GET /notes/document/src/{src} a.pdf"},
				{"HEAD", "/identify/me", 200, "GET /identify/me "},
				{"POST", "/identify/me", 405, ""},
				{"GET", "/identify%2Fme", 404, ""},
				{"GET", "/identify/me/", 404, ""},
				{"GET", "//identify/me", 307, ""},
				{"GET", "/identify/./me", 307, ""},
				{"GET", "/Identify/me", 404, ""},
			} {
				req := httptest.NewRequest(r.method, r.target, nil)
				req.Header.Set("Authorization", "Bearer "+raw)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != r.code || r.body != "" && w.Body.String() != r.body {
					t.Errorf("%s %s: %d %q, want %d %q", r.method, r.target, w.Code, w.Body, r.code, r.body)
				}
				if r.code == 405 && w.Header().Get("Allow") != "GET" {
					t.Errorf("%s %s: Allow %q", r.method, r.target, w.Header().Get("Allow"))
				}
			}
		})
	}
}
