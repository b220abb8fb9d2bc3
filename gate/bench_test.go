package gate_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/token"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmarks
// measure the handlers rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// small is the handler measured bare and behind the middleware.
var small = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"ok":true}`))
})

// BenchmarkAuthorizedGET reports the same small handler bare and behind the
// whole gate (routing, bearer token, x-roles, openapi3filter validation)
// for an authorized GET /identify/me. The difference is the gate's cost per
// request. Run: make bench.
func BenchmarkAuthorizedGET(b *testing.B) {
	spec, err := access.LoadSpec(b.Context(), rolegate.OpenAPIYAML)
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := token.New(token.Config{Secret: make([]byte, 32), Issuer: "i", Audience: "a", TTL: time.Hour, Leeway: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := tokens.Issue(token.Subject{UserID: 1, Email: "bench@example.com", Roles: []string{"user"}, SessionID: "00000000-0000-4000-8000-000000000001", Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	guarded, err := gate.New(spec, gate.Options{Verifier: tokens}, small)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/identify/me", nil)
	req.Header.Set("Authorization", "Bearer "+raw)

	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", small},
		{"gate", guarded},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			bc.h.ServeHTTP(w, req) // warm the token cache
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
