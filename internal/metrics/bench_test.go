package metrics_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/httpserve"
	"github.com/rolegate/rolegate/internal/metrics"
)

// BenchmarkMiddleware reports a small handler that names its operation, as
// the gate does, bare and behind the metrics middleware (outside a request
// record: counted as unrouted), then behind httplog alone and behind
// httplog and the metrics middleware, as served. The differences are the
// metrics' cost per request (httplog's own, a random id and a log line,
// is larger and varies more).
func BenchmarkMiddleware(b *testing.B) {
	small := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httplog.SetOperation(r.Context(), "getMe")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	m := metrics.New(metrics.Deps{Operations: []string{"getMe", "createToken"}})
	logger := slog.New(slog.DiscardHandler)
	req := httptest.NewRequest("GET", "/identify/me", nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", small},
		{"metrics", m.Middleware(small)},
		{"httplog", httplog.Middleware(logger, small)},
		{"httplog+metrics", httplog.Middleware(logger, m.Middleware(small))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &httpserve.Discard{H: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}
