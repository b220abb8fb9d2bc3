package httplog_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rolegate/rolegate/internal/httplog"
)

type parentKey struct{}
type hookKey struct{}

// The context a handler gets carries the request's record, what
// Options.Context added and everything of the request's own context, and
// ends when that one does.
func TestRequestContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), parentKey{}, "parent"))
	var reached bool
	h := httplog.New(httplog.Options{
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Context: func(ctx context.Context) context.Context { return context.WithValue(ctx, hookKey{}, "hook") },
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		ctx := r.Context()
		if id := httplog.RequestID(ctx); len(id) != 24 || w.Header().Get(httplog.HeaderRequestID) != id {
			t.Errorf("request id %q, header %q", id, w.Header().Get(httplog.HeaderRequestID))
		}
		for k, want := range map[any]string{parentKey{}: "parent", hookKey{}: "hook"} {
			if v := ctx.Value(k); v != want {
				t.Errorf("%T: %v, want %s", k, v, want)
			}
		}
		if ctx.Err() != nil {
			t.Fatal("done before its parent")
		}
		cancel()
		<-ctx.Done()
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(parent, "GET", "/", nil))
	if !reached {
		t.Fatal("the handler did not run")
	}
}
