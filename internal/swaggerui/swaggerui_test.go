package swaggerui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// served is every name File answers, with its content type and a piece of
// text that shows the file is the one meant.
var served = []struct {
	name, contentType, contains string
}{
	{"", "text/html; charset=utf-8", `<div id="swagger-ui">`},
	{"index.html", "text/html; charset=utf-8", `<div id="swagger-ui">`},
	{"rolegate.css", "text/css; charset=utf-8", `label[for="password_type"]`},
	{"swagger-initializer.js", "text/javascript; charset=utf-8", "SwaggerUIBundle({"},
	{"swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"},
	{"swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle"},
	{"favicon-32x32.png", "image/png", "\x89PNG\r\n\x1a\n"},
	{"favicon-16x16.png", "image/png", "\x89PNG\r\n\x1a\n"},
	{"oauth2-redirect.html", "text/html; charset=utf-8", `<script src="oauth2-redirect.js">`},
	{"oauth2-redirect.js", "text/javascript; charset=utf-8", "window.opener.swaggerUIRedirectOauth2"},
}

func TestFile(t *testing.T) {
	for _, tt := range served {
		data, contentType, ok := File(tt.name)
		if !ok {
			t.Errorf("File(%q) not found", tt.name)
			continue
		}
		if contentType != tt.contentType {
			t.Errorf("File(%q) content type = %q, want %q", tt.name, contentType, tt.contentType)
		}
		if !bytes.Contains(data, []byte(tt.contains)) {
			t.Errorf("File(%q) (%d bytes) does not contain %q", tt.name, len(data), tt.contains)
		}
	}
}

func TestFileNotFound(t *testing.T) {
	for _, name := range []string{
		"../../go.mod",
		"dist/index.html",
		"dist/swagger-ui.css",
		"swaggerui.go",
		"swaggerui_test.go",
		"/index.html",
		"./index.html",
		"index.html/",
		"Index.html",
		".",
		"dist",
		// Embedded, but not part of the page.
		"LICENSE",
		"NOTICE",
		"VERSION",
		"swagger-ui-bundle.js.LICENSE.txt",
		// In swagger-ui-dist, but not copied.
		"index.css",
		"swagger-ui-standalone-preset.js",
		"swagger-ui-bundle.js.map",
		"swagger-ui.css.map",
	} {
		if data, contentType, ok := File(name); ok || data != nil || contentType != "" {
			t.Errorf("File(%q) = %d bytes, %q, %v; want not found", name, len(data), contentType, ok)
		}
	}
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>`)
	attrRE = regexp.MustCompile(`([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?`)
)

// TestIndex checks that the page needs no 'unsafe-inline' and loads nothing
// but the files File serves, each by its /docs/ path.
func TestIndex(t *testing.T) {
	if diff := cmp.Diff([]string{"/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"}, pageScripts(t, "index.html")); diff != "" {
		t.Errorf("index.html scripts (-want +got):\n%s", diff)
	}
}

// TestOAuth2Redirect checks the same of the page the Authorize dialog's code
// flow comes back to: its one script is a file (upstream's, named relative
// to the page), so the policy's script-src 'self' lets it run.
func TestOAuth2Redirect(t *testing.T) {
	if diff := cmp.Diff([]string{"/docs/oauth2-redirect.js"}, pageScripts(t, "oauth2-redirect.html")); diff != "" {
		t.Errorf("oauth2-redirect.html scripts (-want +got):\n%s", diff)
	}
}

// pageScripts checks that the page name, served at /docs/name, has no inline
// script, handler or style and loads only files File serves under /docs/,
// and returns the paths of its scripts in order.
func pageScripts(t *testing.T, name string) []string {
	t.Helper()
	page, _, _ := File(name)
	base := &url.URL{Path: "/docs/" + name}
	var scripts []string
	for _, tag := range tagRE.FindAllStringSubmatch(string(page), -1) {
		el := strings.ToLower(tag[1])
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(tag[2], -1) {
			attrs[strings.ToLower(a[1])] = strings.Trim(a[2], `"'`)
		}
		for attr, value := range attrs {
			switch {
			case strings.HasPrefix(attr, "on"):
				t.Errorf("%s: <%s> has an inline event handler %s=%q", name, el, attr, value)
			case attr == "style":
				t.Errorf("%s: <%s> has an inline style %q", name, el, value)
			case attr == "src" || attr == "href":
				ref, err := url.Parse(value)
				if err != nil || ref.Scheme != "" || ref.Host != "" {
					t.Errorf("%s: <%s %s=%q> names another origin", name, el, attr, value)
					continue
				}
				file, isDocs := strings.CutPrefix(base.ResolveReference(ref).Path, "/docs/")
				if _, _, ok := File(file); !isDocs || file == "" || !ok {
					t.Errorf("%s: <%s %s=%q> does not name a file served under /docs/", name, el, attr, value)
				}
			}
		}
		switch el {
		case "script":
			if attrs["src"] == "" {
				t.Errorf("%s: inline <script>: %s", name, tag[0])
				continue
			}
			ref, _ := url.Parse(attrs["src"])
			scripts = append(scripts, base.ResolveReference(ref).Path)
		case "meta":
			if _, ok := attrs["http-equiv"]; ok {
				t.Errorf("%s: unexpected %s: the server sends the headers", name, tag[0])
			}
		case "style", "base", "iframe", "object", "embed", "form":
			t.Errorf("%s: unexpected %s", name, tag[0])
		}
	}
	return scripts
}

func TestContentSecurityPolicy(t *testing.T) {
	directives := map[string][]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		fields := strings.Fields(d)
		if len(fields) == 0 {
			t.Fatalf("empty directive in %q", ContentSecurityPolicy)
		}
		if _, dup := directives[fields[0]]; dup {
			t.Errorf("%s repeated: browsers ignore all but the first", fields[0])
		}
		directives[fields[0]] = fields[1:]
	}
	for _, tt := range []struct {
		directive string
		want      []string
	}{
		{"default-src", []string{"'none'"}},
		// No 'unsafe-inline', 'unsafe-eval', data: or other origins.
		{"script-src", []string{"'self'"}},
		{"connect-src", []string{"'self'"}}, // /openapi.json and the API itself
		{"frame-ancestors", []string{"'none'"}},
		{"base-uri", []string{"'none'"}},
		{"form-action", []string{"'none'"}},
	} {
		if diff := cmp.Diff(tt.want, directives[tt.directive]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.directive, diff)
		}
	}
}

func TestInitializer(t *testing.T) {
	js, _, _ := File("swagger-initializer.js")
	for _, want := range []string{
		`url: "/openapi.json",`,
		`dom_id: "#swagger-ui",`,
		`persistAuthorization: false,`,
		`queryConfigEnabled: false,`,
		`passwordType: "request-body"`,
		// The Authorize dialog's code flow: the built-in docs client, with
		// PKCE, back at this page's oauth2-redirect.html, never with a secret.
		`const docsClient = "rolegate-docs";`,
		`clientId: docsClient,`,
		`usePkceWithAuthorizationCodeGrant: true,`,
		`scopes: "openid email",`,
		`oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",`,
		`authorizeAccessCodeWithFormParams: (exchange) => (args) =>`,
	} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("swagger-initializer.js lacks %s", want)
		}
	}
	if n := len(regexp.MustCompile(`\burl:`).FindAll(js, -1)); n != 1 {
		t.Errorf("swagger-initializer.js sets url %d times, want once", n)
	}
}

// TestNothingFromOutside checks that the files the page loads refer to no
// other origin: the stylesheets' url() values are all data: URIs.
func TestNothingFromOutside(t *testing.T) {
	urlRE := regexp.MustCompile(`url\(\s*["']?([^"')\s]*)`)
	for _, name := range []string{"index.html", "rolegate.css", "swagger-initializer.js", "swagger-ui.css", "oauth2-redirect.html", "oauth2-redirect.js"} {
		data, _, _ := File(name)
		if name != "swagger-ui.css" && regexp.MustCompile(`(?i)https?:|//[a-z0-9]`).Match(data) {
			t.Errorf("%s mentions another origin", name)
		}
		for _, m := range urlRE.FindAllSubmatch(data, -1) {
			if !bytes.HasPrefix(m[1], []byte("data:")) {
				t.Errorf("%s loads %s", name, m[0])
			}
		}
		if bytes.Contains(data, []byte("@import")) {
			t.Errorf("%s has an @import", name)
		}
	}
}

// TestDistMatchesPin checks that dist/ holds what tools/swagger-ui/refresh.sh
// copies from the swagger-ui-dist version pinned in tools/swagger-ui.
func TestDistMatchesPin(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, "../../tools/swagger-ui/package.json", &pkg)
	pin := pkg.Dependencies["swagger-ui-dist"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(pin) {
		t.Fatalf("package.json pins swagger-ui-dist %q, want an exact version", pin)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	readJSON(t, "../../tools/swagger-ui/package-lock.json", &lock)
	if got := lock.Packages["node_modules/swagger-ui-dist"].Version; got != pin {
		t.Errorf("package-lock.json has swagger-ui-dist %q, package.json pins %q: run npm install in tools/swagger-ui", got, pin)
	}

	version, err := content.ReadFile("dist/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(version)); got != pin {
		t.Errorf("dist/VERSION = %q, package.json pins %q: run tools/swagger-ui/refresh.sh", got, pin)
	}
	// The bundle states its own version, so a hand-edited VERSION is caught too.
	bundle, _, _ := File("swagger-ui-bundle.js")
	if !bytes.Contains(bundle, []byte(`PACKAGE_VERSION:"`+pin+`"`)) {
		t.Errorf("swagger-ui-bundle.js is not swagger-ui-dist %s: run tools/swagger-ui/refresh.sh", pin)
	}

	entries, err := fs.ReadDir(content, "dist")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{
		"LICENSE",
		"NOTICE",
		"VERSION",
		"favicon-16x16.png",
		"favicon-32x32.png",
		"oauth2-redirect.html",
		"oauth2-redirect.js",
		"swagger-ui-bundle.js",
		"swagger-ui-bundle.js.LICENSE.txt",
		"swagger-ui.css",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("embedded dist/ (-want +got):\n%s", diff)
	}
}

func readJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}
