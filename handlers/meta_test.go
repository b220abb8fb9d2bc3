package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/swaggerui"
)

func TestDocsAndSpecAreServed(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tests := []struct {
		path, wantType, wantIn string
		wantCSP                bool
	}{
		{"/docs", "text/html", "swagger-initializer.js", true},
		{"/docs/swagger-ui.css", "text/css", ".swagger-ui", true},
		{"/docs/swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle", true},
		{"/docs/swagger-initializer.js", "text/javascript", "/openapi.json", true},
		// Where the Authorize dialog's code flow comes back, with its query.
		{"/docs/oauth2-redirect.html?code=abc&state=xyz&iss=rolegate", "text/html", `<script src="oauth2-redirect.js">`, true},
		{"/docs/oauth2-redirect.js", "text/javascript", "swaggerUIRedirectOauth2", true},
		{"/openapi.yaml", "application/yaml", "openapi: 3.0.3", false},
		{"/openapi.json", "application/json", `"openapi":"3.0.3"`, false},
	}
	for _, tt := range tests {
		r := do(t, "GET", e.URL+tt.path, nil, nil)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), tt.wantType) || !strings.Contains(r.body, tt.wantIn) {
			t.Errorf("GET %s = %d %s (%d bytes)", tt.path, r.status, r.header.Get("Content-Type"), len(r.body))
		}
		if got := r.header.Get("Content-Security-Policy"); tt.wantCSP && got != swaggerui.ContentSecurityPolicy {
			t.Errorf("GET %s: CSP = %q", tt.path, got)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(do(t, "GET", e.URL+"/openapi.json", nil, nil).body), &doc); err != nil || doc["paths"] == nil {
		t.Errorf("openapi.json does not decode to a spec: %v", err)
	}
	for _, p := range []string{"/docs/nope.js", "/docs/LICENSE", "/docs/VERSION"} {
		assertProblem(t, do(t, "GET", e.URL+p, nil, nil), 404)
	}
	for _, p := range []string{"/docs/..%2Fgo.mod", "/docs/.hidden"} {
		assertProblem(t, do(t, "GET", e.URL+p, nil, nil), 400)
	}
}

// The served spec, as JSON and as YAML, states every operation's access in
// its description, exactly as its x-roles and x-callers say.
func TestServedSpecStatesAccess(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	for _, path := range []string{"/openapi.json", "/openapi.yaml"} {
		r := do(t, "GET", e.URL+path, nil, nil)
		served, err := openapi3.NewLoader().LoadFromData([]byte(r.body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, rule := range e.Spec.Policy.Rules {
			op := served.Paths.Value(rule.Path).GetOperation(rule.Method)
			var want string
			switch {
			case rule.Public:
				want = "**Access:** public, no token."
			case len(rule.Roles) == 0:
				want = "**Access:** any authenticated user."
			case len(rule.Roles) == 1:
				want = "**Access:** the role " + rule.Roles[0] + "."
			default:
				want = "**Access:** one of the roles " + strings.Join(rule.Roles, ", ") + "."
			}
			if rule.Org != "" {
				// The org sentence comes between the roles and the rest.
				if org := "; an org: role is held within the organization that {" + rule.Org + "} names"; !strings.Contains(op.Description, org) {
					t.Errorf("%s %s %s: description %q does not state %q", path, rule.Method, rule.Path, op.Description, org)
				}
				want = strings.TrimSuffix(want, ".")
			}
			if rule.PeopleOnly && rule.Org == "" {
				want = strings.TrimSuffix(want, ".") + ", for user accounts only: a machine client's token gets 403 whatever its roles."
			}
			if !strings.Contains("\n\n"+op.Description, "\n\n"+want) {
				t.Errorf("%s %s %s: description %q does not state %q", path, rule.Method, rule.Path, op.Description, want)
			}
		}
	}
}
