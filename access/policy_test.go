package access_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
)

func load(t *testing.T, spec string) (*access.Policy, error) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	if err != nil {
		t.Fatalf("loading spec: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("spec invalid: %v", err)
	}
	return access.Load(doc)
}

// spec builds a one-operation spec: global security, then the operation's
// own lines (indented under GET /things/{id}).
func spec(global, op string) string {
	return `openapi: 3.0.3
info: {title: t, version: "1"}
` + global + `
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
    pw:
      type: oauth2
      flows: {password: {tokenUrl: /token, scopes: {}}}
    key: {type: apiKey, in: header, name: X-Key}
paths:
  /things/{id}:
    get:
      operationId: getThing
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
` + op + `
      responses:
        "200": {description: ok}
        "401": {description: no}
        "403": {description: no}
`
}

func TestLoadRefusesUndeclaredOrInconsistentAccess(t *testing.T) {
	t.Parallel()
	const secured = "security: [{bearerAuth: []}]"
	tests := []struct {
		name, global, op, wantErr string
	}{
		{"secured without x-roles", secured, "", "is secured but has no x-roles"},
		{"public with x-roles", secured, "      security: []\n      x-roles: [user]", "is public (`security: []`) but has x-roles"},
		{"inherited empty security", "", "", "declares no access"},
		{"x-roles not a list", secured, "      x-roles: user", "x-roles must be a list"},
		{"x-roles with a bad name", secured, "      x-roles: [User!]", "is not a role name"},
		{"x-roles with a duplicate", secured, "      x-roles: [user, user]", "listed twice"},
		{"anonymous alternative", secured, "      security: [{bearerAuth: []}, {}]\n      x-roles: [user]", "allows anonymous access"},
		{"unsupported scheme", secured, "      security: [{key: []}]\n      x-roles: [user]", "unsupported security scheme"},
		{"public with x-callers", secured, "      security: []\n      x-callers: [user]", "is public (`security: []`) but has x-callers"},
		{"x-callers not a list", secured, "      x-roles: []\n      x-callers: user", "x-callers must be a list"},
		{"x-callers empty", secured, "      x-roles: []\n      x-callers: []", "x-callers must be a list"},
		{"x-callers unknown kind", secured, "      x-roles: []\n      x-callers: [robot]", "is not a caller kind"},
		{"x-callers duplicate", secured, "      x-roles: []\n      x-callers: [user, user]", "listed twice"},
		{"x-callers clients alone", secured, "      x-roles: []\n      x-callers: [client]", "machine clients alone"},
		{"public with x-acr", secured, "      security: []\n      x-acr: {values: [\"urn:rolegate:acr:mfa\"]}", "but has x-acr"},
		{"x-acr not an object", secured, "      x-roles: []\n      x-acr: mfa", "x-acr must be an object"},
		{"x-acr unknown value", secured, "      x-roles: []\n      x-acr: {values: [urn:other:acr]}", "not an acr value"},
		{"x-acr without values", secured, "      x-roles: []\n      x-acr: {max-age: 300}", "values is required"},
		{"x-acr bad max-age", secured, "      x-roles: []\n      x-acr: {values: [\"urn:rolegate:acr:mfa\"], max-age: -1}", "max-age must be"},
		{"x-acr unknown field", secured, "      x-roles: []\n      x-acr: {values: [\"urn:rolegate:acr:mfa\"], maxAge: 5}", "unknown field"},
		{"x-mfa-enrolment false", secured, "      x-roles: []\n      x-mfa-enrolment: false", "must be true"},
		{"org role without x-org", secured, "      x-roles: [org:viewer]", "lists org roles (viewer) but no x-org"},
		{"x-org naming no parameter", secured, "      x-roles: [org:viewer]\n      x-org: orgId", `x-org names "orgId", which the path /things/{id} has no parameter for`},
		{"x-org not a name", secured, "      x-roles: [org:viewer]\n      x-org: [id]", "x-org must name a path parameter"},
		{"x-org empty", secured, "      x-roles: [org:viewer]\n      x-org: \"\"", "x-org must name a path parameter"},
		{"an org role no org can have", secured, "      x-roles: [org:Viewer]\n      x-org: id", "a role no organization can have"},
		{"an empty org role", secured, "      x-roles: [\"org:\"]\n      x-org: id", "a role no organization can have"},
		{"public with x-org", secured, "      security: []\n      x-org: id", "but has x-acr, x-mfa-enrolment or x-org"},
		{"x-org with no roles", secured, "      x-roles: []\n      x-org: id", "list org:* for any member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, spec(tt.global, tt.op))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "getThing") {
				t.Fatalf("Load error = %v, want one naming getThing and containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadRefusesSecuredOperationWithout401And403(t *testing.T) {
	t.Parallel()
	s := strings.Replace(spec("security: [{bearerAuth: []}]", "      x-roles: [user]"), "        \"403\": {description: no}\n", "", 1)
	if _, err := load(t, s); err == nil || !strings.Contains(err.Error(), "does not declare its 403 response") {
		t.Fatalf("Load error = %v, want the missing 403", err)
	}
}

func TestLoadRefusesPartialSegmentParameters(t *testing.T) {
	t.Parallel()
	s := strings.ReplaceAll(spec("security: []", "      security: []"), "/things/{id}", "/things/{id}.pdf")
	if _, err := load(t, s); err == nil || !strings.Contains(err.Error(), "whole segments") {
		t.Fatalf("Load error = %v, want the path template refused", err)
	}
}

func TestLoadAcceptsDeclaredAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, global, op string
		wantPublic       bool
		wantRoles        []string
		wantAccess       string
		wantPeopleOnly   bool
	}{
		{"public", "security: [{bearerAuth: []}]", "      security: []", true, nil, "public", false},
		{"any authenticated", "security: [{bearerAuth: []}]", "      x-roles: []", false, []string{}, "any authenticated user", false},
		{"roles, either scheme", "", "      security: [{pw: []}, {bearerAuth: []}]\n      x-roles: [user, admin]", false, []string{"user", "admin"}, "user, admin", false},
		{"people only", "security: [{bearerAuth: []}]", "      x-roles: [user]\n      x-callers: [user]", false, []string{"user"}, "user (user accounts only)", true},
		{"people only, any role", "security: [{bearerAuth: []}]", "      x-roles: []\n      x-callers: [user]", false, []string{}, "any authenticated user (user accounts only)", true},
		{"both kinds said", "security: [{bearerAuth: []}]", "      x-roles: [user]\n      x-callers: [client, user]", false, []string{"user"}, "user", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := load(t, spec(tt.global, tt.op))
			if err != nil {
				t.Fatal(err)
			}
			r := p.Rules[0]
			if r.Public != tt.wantPublic || r.Access() != tt.wantAccess || r.OperationID != "getThing" || r.PeopleOnly != tt.wantPeopleOnly {
				t.Errorf("rule = %+v (%s)", r, r.Access())
			}
			if diff := cmp.Diff(tt.wantRoles, r.Roles); !tt.wantPublic && diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}
}

// The project's own spec: every operation declares its access, which is
// what `rolegate serve` checks before it starts.
func TestProjectSpecDeclaresAllAccess(t *testing.T) {
	t.Parallel()
	p, err := load(t, string(rolegate.OpenAPIYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) == 0 {
		t.Fatal("no operations")
	}
	for _, want := range []string{"admin", "user"} {
		if !strings.Contains(strings.Join(p.Roles(), ","), want) {
			t.Errorf("Roles() = %v, want %s among them", p.Roles(), want)
		}
	}
}

func TestRuleAdmits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule  access.Rule
		roles []string
		want  bool
	}{
		{access.Rule{Roles: []string{"user", "admin"}}, []string{"admin"}, true},
		{access.Rule{Roles: []string{"user", "admin"}}, []string{"system", "user"}, true},
		{access.Rule{Roles: []string{"user", "admin"}}, []string{"system"}, false},
		{access.Rule{Roles: []string{"user"}}, nil, false},
		{access.Rule{Roles: []string{}}, nil, true},
		{access.Rule{Public: true}, nil, true},
	}
	for _, tt := range tests {
		if got := tt.rule.Admits(tt.roles); got != tt.want {
			t.Errorf("%v.Admits(%v) = %v, want %v", tt.rule.Roles, tt.roles, got, tt.want)
		}
	}
}

// TestACRSatisfied: x-acr's values and max-age.
func TestACRSatisfied(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	a := &access.ACR{Values: []string{"urn:rolegate:acr:mfa"}, MaxAge: 5 * time.Minute}
	tests := []struct {
		name     string
		acr      string
		authTime time.Time
		want     bool
	}{
		{"mfa, recent", "urn:rolegate:acr:mfa", now.Add(-time.Minute), true},
		{"mfa, just at max-age", "urn:rolegate:acr:mfa", now.Add(-5 * time.Minute), true},
		{"mfa, too old", "urn:rolegate:acr:mfa", now.Add(-5*time.Minute - time.Second), false},
		{"mfa, no auth_time", "urn:rolegate:acr:mfa", time.Time{}, false},
		{"password", "urn:rolegate:acr:pwd", now, false},
		{"none", "", now, false},
	}
	for _, tt := range tests {
		if got := a.Satisfied(tt.acr, tt.authTime, now); got != tt.want {
			t.Errorf("%s: Satisfied = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !(*access.ACR)(nil).Satisfied("", time.Time{}, now) {
		t.Error("no x-acr is always satisfied")
	}
}

// TestProjectSpecStepUps: the operations the issue names declare a
// step-up, the served spec says so, and the access matrix shows it.
func TestProjectSpecStepUps(t *testing.T) {
	t.Parallel()
	p, err := load(t, string(rolegate.OpenAPIYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"deleteUser", "setUserRoles", "createClient", "rotateClientSecret", "resetUserFactors"} {
		var rule *access.Rule
		for _, r := range p.Rules {
			if r.OperationID == op {
				rule = r
			}
		}
		if rule == nil || rule.ACR == nil || rule.ACR.Values[0] != "urn:rolegate:acr:mfa" || rule.ACR.MaxAge != 5*time.Minute {
			t.Errorf("%s: x-acr %+v, want mfa within 300 s", op, rule)
			continue
		}
		if !strings.Contains(rule.Access(), "step-up: urn:rolegate:acr:mfa within 5m0s") {
			t.Errorf("%s: the matrix says %q", op, rule.Access())
		}
	}
}

// TestOrgRules: x-org splits x-roles into org roles and global ones, and
// AdmitsIn applies them: a listed global role anywhere, otherwise a
// member with a listed org role (any member when none is listed).
func TestOrgRules(t *testing.T) {
	t.Parallel()
	p, err := load(t, spec("security: [{bearerAuth: []}]", "      x-roles: [org:viewer, org:editor, admin]\n      x-org: id"))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if r.Org != "id" || !slices.Equal(r.OrgRoles, []string{"viewer", "editor"}) || !slices.Equal(r.GlobalRoles, []string{"admin"}) {
		t.Fatalf("rule %+v", r)
	}
	if got := p.Roles(); !slices.Equal(got, []string{"admin"}) {
		t.Errorf("Policy.Roles = %v, want the global ones only", got)
	}
	anyMember := &access.Rule{Org: "id", OrgRoles: []string{access.AnyMember}}
	tests := []struct {
		name           string
		rule           *access.Rule
		global, org    []string
		member, admits bool
	}{
		{"a viewer", r, []string{"user"}, []string{"viewer"}, true, true},
		{"an owner only", r, nil, []string{"owner"}, true, false},
		{"an admin, not a member", r, []string{"admin"}, nil, false, true},
		{"not a member", r, []string{"user"}, nil, false, false},
		{"any member", anyMember, nil, []string{"auditor"}, true, true},
		{"any member, not one", anyMember, []string{"admin"}, nil, false, false},
	}
	for _, tt := range tests {
		if got := tt.rule.AdmitsIn(tt.global, tt.org, tt.member); got != tt.admits {
			t.Errorf("%s: AdmitsIn = %v, want %v", tt.name, got, tt.admits)
		}
	}
}
