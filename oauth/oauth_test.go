package oauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/problem"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, Refuse(InvalidGrant, "The email or password is incorrect."))
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 400 || body["error"] != "invalid_grant" || body["error_description"] != "The email or password is incorrect." ||
		w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Pragma") != "no-cache" {
		t.Errorf("Write = %d %v %s", w.Code, w.Header(), w.Body)
	}
}

func TestFromProblem(t *testing.T) {
	tests := []struct {
		kind   problem.Kind
		status int // 0: keeps its own format
	}{
		{problem.Invalid, 400},
		{problem.UnsupportedMedia, 400},
		{problem.TooLarge, 413},
		{problem.Unavailable, 0},
		{problem.Internal, 0},
	}
	for _, tt := range tests {
		e := FromProblem(problem.New(tt.kind, "detail"))
		switch {
		case tt.status == 0 && e != nil:
			t.Errorf("kind %d: %v, want nil", tt.kind, e)
		case tt.status != 0 && (e == nil || e.Status != tt.status || e.Code != InvalidRequest):
			t.Errorf("kind %d: %v, want %d invalid_request", tt.kind, e, tt.status)
		}
	}
}

func TestRequestRules(t *testing.T) {
	tests := []struct {
		name, url, body string
		want            string // "" when accepted
	}{
		{"form", "/token", "grant_type=password&username=a&password=b", ""},
		{"query string", "/token?password=b", "grant_type=password", "Parameters must be sent in the request body."},
		{"repeated", "/token", "grant_type=password&username=a&username=b", "Parameters must not be repeated."},
		{"bad escape", "/token", "grant_type=%zz", "The request body is not a valid form."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.url, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			e := CheckURL(r)
			if e == nil {
				e = CheckForm(r)
			}
			var got string
			if e != nil {
				got = e.Description
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
