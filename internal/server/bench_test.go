package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/httpserve"
)

// BenchmarkStack is what rolegate does for a request once net/http has
// read it: the whole handler as served (access log in JSON, request id,
// gate, the operation), for GET /identify/me (token only) and the notes of
// a document (one query). `make bench-http` measures the same over TCP.
func BenchmarkStack(b *testing.B) {
	env := apitest.New(b, apitest.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessJSON: io.Discard})
	u := env.CreateUser(b, "bench@example.com", "user")
	tok := env.Token(b, u)
	for _, path := range []string{"/identify/me", "/notes/document/src/bench.pdf"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := &httpserve.Discard{H: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.H)
				env.Handler.ServeHTTP(w, req)
			}
		})
	}
}
