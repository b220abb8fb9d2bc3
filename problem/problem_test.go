package problem_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/problem"
)

// The exact body a client sees for every class of error: internal causes
// never reach it, client details do.
func TestWritePinsTheClientVisibleBody(t *testing.T) {
	secret := errors.New(`pq: relation "users" does not exist (SQLSTATE 42P01) password=hunter2`)
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"internal", secret, 500,
			`{"detail":"Internal error.","instance":"/x","status":500,"title":"Internal Server Error","type":"about:blank"}`},
		{"wrapped internal", fmt.Errorf("loading: %w", secret), 500,
			`{"detail":"Internal error.","instance":"/x","status":500,"title":"Internal Server Error","type":"about:blank"}`},
		{"internal kind with a detail", problem.Wrap(problem.Internal, "database said no", secret), 500,
			`{"detail":"Internal error.","instance":"/x","status":500,"title":"Internal Server Error","type":"about:blank"}`},
		{"invalid", problem.Wrap(problem.Invalid, "The request is invalid.", secret), 400,
			`{"detail":"The request is invalid.","instance":"/x","status":400,"title":"Bad Request","type":"about:blank"}`},
		{"unauthenticated", problem.New(problem.Unauthenticated, "An access token is required."), 401,
			`{"detail":"An access token is required.","instance":"/x","status":401,"title":"Unauthorized","type":"about:blank"}`},
		{"forbidden", problem.New(problem.Forbidden, "No."), 403,
			`{"detail":"No.","instance":"/x","status":403,"title":"Forbidden","type":"about:blank"}`},
		{"not found", problem.New(problem.NotFound, "No such note."), 404,
			`{"detail":"No such note.","instance":"/x","status":404,"title":"Not Found","type":"about:blank"}`},
		{"method", problem.New(problem.MethodNotAllowed, "Allowed methods: GET."), 405,
			`{"detail":"Allowed methods: GET.","instance":"/x","status":405,"title":"Method Not Allowed","type":"about:blank"}`},
		{"conflict", problem.New(problem.Conflict, "It exists."), 409,
			`{"detail":"It exists.","instance":"/x","status":409,"title":"Conflict","type":"about:blank"}`},
		{"too large", problem.New(problem.TooLarge, "Too big."), 413,
			`{"detail":"Too big.","instance":"/x","status":413,"title":"Request Entity Too Large","type":"about:blank"}`},
		{"media", problem.New(problem.UnsupportedMedia, "Not a PDF."), 415,
			`{"detail":"Not a PDF.","instance":"/x","status":415,"title":"Unsupported Media Type","type":"about:blank"}`},
		{"unprocessable", problem.New(problem.Unprocessable, "Damaged."), 422,
			`{"detail":"Damaged.","instance":"/x","status":422,"title":"Unprocessable Entity","type":"about:blank"}`},
		{"unavailable", &problem.Error{Kind: problem.Unavailable, Detail: "Later.", Header: http.Header{"Retry-After": {"5"}}}, 503,
			`{"detail":"Later.","instance":"/x","status":503,"title":"Service Unavailable","type":"about:blank"}`},
		{"too many requests", &problem.Error{Kind: problem.TooManyRequests, Detail: "Slow down.", Header: http.Header{"Retry-After": {"5"}}}, 429,
			`{"detail":"Slow down.","instance":"/x","status":429,"title":"Too Many Requests","type":"about:blank"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			problem.Write(w, httptest.NewRequest("GET", "/x?token=abc", nil), tt.err)
			if w.Code != tt.wantStatus || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s", w.Code, w.Header().Get("Content-Type"))
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
			}
			if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "SQLSTATE") {
				t.Error("the cause leaked to the client")
			}
			if (tt.wantStatus == 503 || tt.wantStatus == 429) && w.Header().Get("Retry-After") != "5" {
				t.Error("the error's headers were not sent")
			}
		})
	}
}

// The instance is the path as sent, percent-encoded: bytes that are not
// UTF-8, NUL and control characters come back as escapes, never raw or as
// U+FFFD.
func TestBodyInstanceIsTheEscapedPath(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/notes/1", "/notes/1"},
		{"/notes/document/src/%ff", "/notes/document/src/%ff"},
		{"/notes/document/src/a%00b", "/notes/document/src/a%00b"},
		{"/notes/document/src/a%0a%1bb", "/notes/document/src/a%0a%1bb"},
		{"/notes/document/src/caf%C3%A9", "/notes/document/src/caf%C3%A9"},
		{"/notes/document/src/a%2Fb", "/notes/document/src/a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			p := problem.Body(httptest.NewRequest("GET", tt.target, nil), problem.New(problem.Invalid, "No."))
			if p.Instance == nil || *p.Instance != tt.want {
				t.Errorf("instance = %v, want %q", p.Instance, tt.want)
			}
		})
	}
}
