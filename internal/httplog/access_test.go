package httplog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/httplog"
)

// times matches the values that differ between two runs of one request.
var times = regexp.MustCompile(`"(time|request_id)":"[^"]*"|"duration":\d+`)

// An access line written directly (Options.AccessJSON) is the line slog's
// JSONHandler writes for the same request, byte for byte but for the time,
// id and duration; paths with anything to escape go through slog itself.
func TestAccessJSONIsSlogJSON(t *testing.T) {
	for _, tt := range []struct {
		name, method, path string
		status             int
	}{
		{"plain", "GET", "/identify/me", 200},
		{"html characters slog leaves alone", "GET", "/notes/document/src/a<b>&c", 404},
		{"a quote", "GET", `/notes/document/src/a"b`, 404},
		{"a backslash", "GET", `/notes/document/src/a\b`, 404},
		{"a control character", "GET", "/notes/document/src/a\x01b", 404},
		{"not ASCII", "GET", "/notes/document/src/caf\u00e9", 404},
		{"invalid UTF-8", "GET", "/notes/document/src/a\xffb", 404},
		{"U+2028", "GET", "/notes/document/src/a\u2028b", 404},
		{"an empty body", "DELETE", "/notes/1", 204},
	} {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httplog.SetOperation(r.Context(), "op")
				w.WriteHeader(tt.status)
				if tt.status != 204 {
					_, _ = w.Write([]byte(`{"x":1}`))
				}
			})
			serve := func(o httplog.Options, out *bytes.Buffer) string {
				req := httptest.NewRequest(tt.method, "/", nil)
				req.URL.Path = tt.path
				httplog.New(o, handler).ServeHTTP(httptest.NewRecorder(), req)
				return out.String()
			}
			var viaSlog, direct bytes.Buffer
			want := serve(httplog.Options{Logger: slog.New(slog.NewJSONHandler(&viaSlog, nil))}, &viaSlog)
			got := serve(httplog.Options{Logger: slog.New(slog.NewJSONHandler(&direct, nil)), AccessJSON: &direct}, &direct)
			if a, b := times.ReplaceAllString(got, "…"), times.ReplaceAllString(want, "…"); a != b {
				t.Errorf("direct line\n%s\nslog's\n%s", got, want)
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(got), &line); err != nil {
				t.Fatalf("not JSON: %v: %s", err, got)
			}
			if ts, _ := line["time"].(string); !rfc3339Nano(ts) {
				t.Errorf("time %q is not in RFC 3339 with nanoseconds, as slog writes it", ts)
			}
			if line["path"] != slogPath(t, want) {
				t.Errorf("path %q, slog's %q", line["path"], slogPath(t, want))
			}
		})
	}
}

func rfc3339Nano(s string) bool {
	ts, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && ts.Format(time.RFC3339Nano) == s
}

func slogPath(t *testing.T, line string) any {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	return m["path"]
}
