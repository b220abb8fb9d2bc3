package signin

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCookies(t *testing.T) {
	tests := []struct {
		publicURL, name, path string
		secure                bool
	}{
		{"https://auth.example.com", "__Host-rolegate_session", "/", true},
		{"https://example.com/auth", "__Host-rolegate_session", "/", true},
		{"http://127.0.0.1:8080", "rolegate_session", "/", false},
		{"http://127.0.0.1:8080/auth", "rolegate_session", "/auth/", false},
	}
	for _, tt := range tests {
		c := NewCookies(tt.publicURL).Session("v", time.Hour)
		if c.Name != tt.name || c.Path != tt.path || c.Secure != tt.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.MaxAge != 3600 {
			t.Errorf("%s: cookie %+v", tt.publicURL, c)
		}
		if gone := NewCookies(tt.publicURL).Session("", 0); gone.MaxAge != -1 {
			t.Errorf("%s: removal MaxAge %d", tt.publicURL, gone.MaxAge)
		}
	}
}

func TestCSRF(t *testing.T) {
	c, other := CSRF{Key: []byte("k1")}, CSRF{Key: []byte("k2")}
	n := NewNonce()
	tests := []struct {
		name         string
		nonce, token string
		want         bool
	}{
		{"its own token", n, c.Token(n), true},
		{"another nonce's", NewNonce(), c.Token(n), false},
		{"another key's", n, other.Token(n), false},
		{"no cookie", "", c.Token(""), false},
		{"no token", n, "", false},
	}
	for _, tt := range tests {
		if got := c.Check(tt.nonce, tt.token); got != tt.want {
			t.Errorf("%s: Check = %v", tt.name, got)
		}
	}
}

// The page's one style sheet is what the CSP's hash allows, and user text
// is escaped.
func TestPages(t *testing.T) {
	w := httptest.NewRecorder()
	p := RenderSignIn(http.StatusOK, SignIn{Action: "/sign-in", Client: `<script>x</script>`, Email: `a"b@example.com`,
		CSRF: "t", Hidden: []Field{{"state", `"><img>`}}})
	if err := Write(w, p); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no style element")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(w.Header().Get("Content-Security-Policy"), h) {
		t.Errorf("CSP %q does not allow the style sheet (%s)", w.Header().Get("Content-Security-Policy"), h)
	}
	for _, bad := range []string{"<script>", `"><img>`, `a"b@`} {
		if strings.Contains(body, bad) {
			t.Errorf("page holds %q unescaped", bad)
		}
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
