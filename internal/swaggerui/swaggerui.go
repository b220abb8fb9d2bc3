// Package swaggerui provides rolegate's API documentation page: Swagger UI,
// embedded in the binary, showing the spec the server publishes at
// /openapi.json. The page loads nothing from outside the server.
//
// The Swagger UI files under dist/ are copied from the npm package
// swagger-ui-dist, at the version pinned in tools/swagger-ui/package.json, by
// tools/swagger-ui/refresh.sh; index.html, rolegate.css and
// swagger-initializer.js are rolegate's own.
package swaggerui

import "embed"

// ContentSecurityPolicy is the CSP the page must be served with. Scripts and
// styles come only from the server's own files: Swagger UI 5 sets its inline
// styles through the CSSOM (element.style), which CSP does not restrict, so
// neither needs 'unsafe-inline'; only style attributes written in the spec's
// Markdown (a table column's alignment) are dropped. img-src allows data:
// for the icons inlined in swagger-ui.css. Swagger UI sends every request
// with fetch and submits no form, so form-action is 'none': a login form
// submitted natively would put the password in the URL. The same policy
// covers oauth2-redirect.html, whose script is a file of its own upstream.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

//go:embed index.html rolegate.css swagger-initializer.js dist
var content embed.FS

// files are the names File serves, each with its path in content and its
// content type. Everything else embedded (the licence texts, VERSION) is not
// served.
var files = map[string]struct{ path, contentType string }{
	"index.html":             {"index.html", "text/html; charset=utf-8"},
	"rolegate.css":           {"rolegate.css", "text/css; charset=utf-8"},
	"swagger-initializer.js": {"swagger-initializer.js", "text/javascript; charset=utf-8"},
	"swagger-ui.css":         {"dist/swagger-ui.css", "text/css; charset=utf-8"},
	"swagger-ui-bundle.js":   {"dist/swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
	"favicon-32x32.png":      {"dist/favicon-32x32.png", "image/png"},
	"favicon-16x16.png":      {"dist/favicon-16x16.png", "image/png"},
	// Where the Authorize dialog's authorization code flow comes back to:
	// the page hands the code to the dialog (window.opener) and closes.
	"oauth2-redirect.html": {"dist/oauth2-redirect.html", "text/html; charset=utf-8"},
	"oauth2-redirect.js":   {"dist/oauth2-redirect.js", "text/javascript; charset=utf-8"},
}

// File returns an embedded file of the docs page by name ("" or "index.html"
// is the page), with its content type; ok is false for any other name. The
// data is the caller's own copy.
func File(name string) (data []byte, contentType string, ok bool) {
	if name == "" {
		name = "index.html"
	}
	f, ok := files[name]
	if !ok {
		return nil, "", false
	}
	data, err := content.ReadFile(f.path)
	if err != nil {
		// Unreachable: TestFile reads every entry of files.
		return nil, "", false
	}
	return data, f.contentType, true
}

// Asset is one served file of the docs page.
type Asset struct {
	Data        []byte
	ContentType string
}

// Assets reads every served file once, keyed by name ("index.html" is the
// page), so that a server can answer from memory without copying per
// request. Callers must not modify the data.
func Assets() map[string]Asset {
	out := make(map[string]Asset, len(files))
	for name := range files {
		data, ct, _ := File(name)
		out[name] = Asset{Data: data, ContentType: ct}
	}
	return out
}
