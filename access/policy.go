// Package access holds the access rules that api/openapi.yaml declares:
// every operation is public (`security: []`) or requires a bearer token and
// lists in `x-roles` the roles it admits (any one suffices; an empty list
// admits any authenticated user). The rules are read and checked once, at
// start-up: a spec that leaves any operation's access undeclared or
// ambiguous is refused, so nothing can be forgotten. Package gate enforces
// them on every request; Caller tells a handler who called.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// Rule is one operation's access rule.
type Rule struct {
	Method      string
	Path        string
	OperationID string
	// Public operations need no token.
	Public bool
	// Roles admitted by a secured operation; empty admits any authenticated user.
	Roles []string
	// PeopleOnly is set when the operation's x-callers admits user accounts
	// alone: a machine client's token is refused with 403 whatever roles it
	// holds, since the operation acts on the caller's own account.
	PeopleOnly bool
	// ACR is the assurance a person's token needs (x-acr); nil for none.
	ACR *ACR
	// Enrolment marks the operations that enrol a second factor
	// (x-mfa-enrolment: true): the only ones a token of a role that must
	// have one reaches before it does.
	Enrolment bool
	// Org is the path parameter that names the organization the
	// operation acts in (x-org); "" for none. OrgRoles are the roles of
	// x-roles written org:<role>, held in that organization, and
	// GlobalRoles the others, held everywhere.
	Org         string
	OrgRoles    []string
	GlobalRoles []string
}

// OrgExt names the path parameter of an operation's organization.
const OrgExt = "x-org"

// OrgRolePrefix starts the x-roles entries held within an organization.
const OrgRolePrefix = "org:"

// AnyMember is the org role of x-roles (org:*) that any member holds,
// whatever their roles.
const AnyMember = "*"

// AdmitsIn reports whether a caller holding the global roles, and, when
// member, the org roles within the operation's organization, may call an
// operation of x-org: a listed global role (admin, say) suffices
// anywhere; otherwise the caller must be a member holding a listed org
// role, or org:* (AnyMember). It does not allocate.
func (r *Rule) AdmitsIn(global, org []string, member bool) bool {
	for _, want := range r.GlobalRoles {
		if slices.Contains(global, want) {
			return true
		}
	}
	if !member {
		return false
	}
	for _, want := range r.OrgRoles {
		if want == AnyMember || slices.Contains(org, want) {
			return true
		}
	}
	return false
}

// ACR is an operation's x-acr: a person's token must carry one of Values
// as its acr, from a sign-in at most MaxAge ago (zero: any time), or,
// when the account has a second factor, the gate asks for a step-up (RFC
// 9470).
type ACR struct {
	Values []string
	MaxAge time.Duration
}

// ACRExt is the extension that states the assurance an operation needs.
const ACRExt = "x-acr"

// EnrolmentExt marks the operations that enrol a second factor.
const EnrolmentExt = "x-mfa-enrolment"

// The acr values x-acr may name (token.ACRPassword, token.ACRMFA).
var acrValues = []string{"urn:rolegate:acr:pwd", "urn:rolegate:acr:mfa"}

// Satisfied reports whether a token of acr, from a sign-in at authTime,
// meets a at now.
func (a *ACR) Satisfied(acr string, authTime, now time.Time) bool {
	if a == nil {
		return true
	}
	if !slices.Contains(a.Values, acr) {
		return false
	}
	return a.MaxAge == 0 || !authTime.IsZero() && now.Sub(authTime) <= a.MaxAge
}

// AdmitsCaller reports whether the kind of caller (a machine client, or a
// person) may call the operation, x-callers being the rule.
func (r *Rule) AdmitsCaller(client bool) bool { return !client || !r.PeopleOnly }

// Admits reports whether a caller holding roles may call the operation. It
// does not allocate.
func (r *Rule) Admits(roles []string) bool {
	if r.Public || len(r.Roles) == 0 {
		return true
	}
	for _, want := range r.Roles {
		if slices.Contains(roles, want) {
			return true
		}
	}
	return false
}

// Access describes the rule for people: "public", "any authenticated user"
// or the roles, comma-separated, followed by " (user accounts only)" when
// machine clients are not admitted, and by the step-up x-acr asks for.
func (r *Rule) Access() string {
	s := strings.Join(r.Roles, ", ")
	switch {
	case r.Public:
		return "public"
	case len(r.Roles) == 0:
		s = "any authenticated user"
	}
	if r.Org != "" {
		s += " (org: roles in the organization {" + r.Org + "})"
	}
	if r.PeopleOnly {
		s += " (user accounts only)"
	}
	if r.ACR != nil {
		s += " (step-up: " + strings.Join(r.ACR.Values, " or ")
		if r.ACR.MaxAge > 0 {
			s += " within " + r.ACR.MaxAge.String()
		}
		s += ")"
	}
	return s
}

// Policy holds the rule of every operation of a spec.
type Policy struct {
	// Rules in path, then method order.
	Rules []*Rule
	byOp  map[*openapi3.Operation]*Rule
}

// rolesExt is the extension that lists an operation's roles.
const rolesExt = "x-roles"

// CallersExt is the extension that lists the kinds of caller a secured
// operation admits: [user] for people alone, [user, client] (the default
// when absent) for machine clients too.
const CallersExt = "x-callers"

// The kinds of caller that x-callers names.
const (
	CallerUser   = "user"
	CallerClient = "client"
)

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// Load reads and checks the access rules of doc. It fails, naming every
// offending operation, when an operation:
//   - is secured but has no x-roles, or x-roles that is not a list of
//     distinct role names;
//   - is public but carries x-roles;
//   - inherits an empty global security instead of saying `security: []`;
//   - allows anonymous access as one alternative of its security (`{}`), or
//     names a security scheme that is not a bearer token scheme;
//   - is secured but does not declare its 401 and 403 responses;
//   - has x-callers that is not a list of distinct caller kinds naming
//     user (or has it while public);
//   - has a path template other than whole-segment {name} parameters.
func Load(doc *openapi3.T) (*Policy, error) {
	var errs []error
	schemes := map[string]bool{} // name -> carries rolegate's bearer token
	if doc.Components != nil {
		for name, ref := range doc.Components.SecuritySchemes {
			s := ref.Value
			// Every OAuth 2 flow and OpenID Connect end in a bearer
			// access token from /token.
			bearer := s != nil && ((s.Type == "http" && strings.EqualFold(s.Scheme, "bearer")) ||
				(s.Type == "oauth2" && s.Flows != nil && (s.Flows.Password != nil || s.Flows.ClientCredentials != nil || s.Flows.AuthorizationCode != nil)) ||
				s.Type == "openIdConnect")
			schemes[name] = bearer
		}
	}
	p := &Policy{byOp: map[*openapi3.Operation]*Rule{}}
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		if err := checkTemplate(path); err != nil {
			errs = append(errs, err)
		}
		item := doc.Paths.Value(path)
		for _, method := range sortedMethods(item) {
			op := item.GetOperation(method)
			rule, ruleErrs := ruleFor(doc, schemes, method, path, op)
			for _, e := range ruleErrs {
				errs = append(errs, fmt.Errorf("%s %s (%s): %w", method, path, op.OperationID, e))
			}
			p.Rules = append(p.Rules, rule)
			p.byOp[op] = rule
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("access: the spec's access rules are inconsistent:\n%w", err)
	}
	return p, nil
}

func sortedMethods(item *openapi3.PathItem) []string {
	var methods []string
	for m := range item.Operations() {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	return methods
}

func ruleFor(doc *openapi3.T, schemes map[string]bool, method, path string, op *openapi3.Operation) (*Rule, []error) {
	rule := &Rule{Method: method, Path: path, OperationID: op.OperationID}
	var errs []error
	security := op.Security
	if security == nil {
		security = &doc.Security
	}
	raw, hasRoles := op.Extensions[rolesExt]
	callers, hasCallers := op.Extensions[CallersExt]
	acr, hasACR := op.Extensions[ACRExt]
	orgParam, hasOrg := op.Extensions[OrgExt]
	enrolment, hasEnrolment := op.Extensions[EnrolmentExt]
	if len(*security) == 0 {
		rule.Public = true
		if op.Security == nil {
			errs = append(errs, errors.New("declares no access: say `security: []` to make it public, or give it x-roles"))
		}
		if hasRoles {
			errs = append(errs, errors.New("is public (`security: []`) but has x-roles"))
		}
		if hasCallers {
			errs = append(errs, errors.New("is public (`security: []`) but has x-callers"))
		}
		if hasACR || hasEnrolment || hasOrg {
			errs = append(errs, errors.New("is public (`security: []`) but has x-acr, x-mfa-enrolment or x-org"))
		}
		return rule, errs
	}
	if hasACR {
		a, err := parseACR(acr)
		if err != nil {
			errs = append(errs, err)
		}
		rule.ACR = a
	}
	if hasEnrolment {
		if b, ok := enrolment.(bool); !ok || !b {
			errs = append(errs, fmt.Errorf("%s must be true when present", EnrolmentExt))
		}
		rule.Enrolment = true
	}
	if hasCallers {
		peopleOnly, err := parseCallers(callers)
		if err != nil {
			errs = append(errs, err)
		}
		rule.PeopleOnly = peopleOnly
	}
	for _, req := range *security {
		if len(req) == 0 {
			errs = append(errs, errors.New("allows anonymous access as one security alternative ({}); make it public or secured, not both"))
		}
		for name := range req {
			if bearer, ok := schemes[name]; !ok {
				errs = append(errs, fmt.Errorf("names undeclared security scheme %q", name))
			} else if !bearer {
				errs = append(errs, fmt.Errorf("uses unsupported security scheme %q: only http bearer, oauth2 (password, client credentials, authorization code) and openIdConnect schemes carry rolegate's tokens", name))
			}
		}
	}
	if !hasRoles {
		errs = append(errs, errors.New("is secured but has no x-roles: list the roles it admits, or [] for any authenticated user"))
	} else {
		roles, err := parseRoles(raw)
		if err != nil {
			errs = append(errs, err)
		}
		rule.Roles = roles
	}
	for _, code := range []int{401, 403} {
		if op.Responses == nil || op.Responses.Status(code) == nil {
			errs = append(errs, fmt.Errorf("is secured but does not declare its %d response", code))
		}
	}
	if hasOrg && len(rule.Roles) == 0 {
		errs = append(errs, fmt.Errorf("has %s but x-roles: []: list org:* for any member, org roles, or global ones", OrgExt))
	}
	for _, name := range rule.Roles {
		if org, ok := strings.CutPrefix(name, OrgRolePrefix); ok {
			rule.OrgRoles = append(rule.OrgRoles, org)
		} else {
			rule.GlobalRoles = append(rule.GlobalRoles, name)
		}
	}
	switch name, isString := orgParam.(string); {
	case !hasOrg && len(rule.OrgRoles) > 0:
		errs = append(errs, fmt.Errorf("lists org roles (%s) but no %s: say which path parameter names the organization", strings.Join(rule.OrgRoles, ", "), OrgExt))
	case !hasOrg:
	case !isString || name == "":
		errs = append(errs, fmt.Errorf("%s must name a path parameter, not %v", OrgExt, orgParam))
	case !strings.Contains(path, "{"+name+"}"):
		errs = append(errs, fmt.Errorf("%s names %q, which the path %s has no parameter for", OrgExt, name, path))
	default:
		rule.Org = name
	}
	return rule, errs
}

func parseRoles(raw any) ([]string, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("x-roles must be a list of role names, not %T", raw)
	}
	roles := make([]string, 0, len(list))
	for _, v := range list {
		name, ok := v.(string)
		bare, org := strings.CutPrefix(name, OrgRolePrefix)
		if !ok || !roleName.MatchString(bare) && !(org && bare == AnyMember) {
			return nil, fmt.Errorf("x-roles: %v is not a role name (lower case, at most 64 of a-z 0-9 _ . -), nor org: and one, a role no organization can have", v)
		}
		if slices.Contains(roles, name) {
			return nil, fmt.Errorf("x-roles: %q is listed twice", name)
		}
		roles = append(roles, name)
	}
	return roles, nil
}

// parseACR reads x-acr: {values: [acr, …], max-age: seconds}, values
// known and distinct, max-age optional (a positive whole number).
func parseACR(raw any) (*ACR, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s must be an object {values, max-age}", ACRExt)
	}
	a := &ACR{}
	for k, v := range m {
		switch k {
		case "values":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, fmt.Errorf("%s: values must be a list of acr values (%s)", ACRExt, strings.Join(acrValues, ", "))
			}
			for _, x := range list {
				s, ok := x.(string)
				if !ok || !slices.Contains(acrValues, s) || slices.Contains(a.Values, s) {
					return nil, fmt.Errorf("%s: %v is not an acr value rolegate issues (%s), or is listed twice", ACRExt, x, strings.Join(acrValues, ", "))
				}
				a.Values = append(a.Values, s)
			}
		case "max-age":
			n, ok := v.(float64)
			if !ok || n < 1 || n != float64(int64(n)) {
				return nil, fmt.Errorf("%s: max-age must be a positive whole number of seconds", ACRExt)
			}
			a.MaxAge = time.Duration(n) * time.Second
		default:
			return nil, fmt.Errorf("%s: unknown field %q (values, max-age)", ACRExt, k)
		}
	}
	if len(a.Values) == 0 {
		return nil, fmt.Errorf("%s: values is required", ACRExt)
	}
	return a, nil
}

// parseCallers reads x-callers: a list of distinct kinds, user and client,
// that names user; peopleOnly is true when it does not name client.
func parseCallers(raw any) (peopleOnly bool, err error) {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return false, fmt.Errorf("%s must be a list of caller kinds (%s, %s)", CallersExt, CallerUser, CallerClient)
	}
	var kinds []string
	for _, v := range list {
		k, ok := v.(string)
		if !ok || k != CallerUser && k != CallerClient {
			return false, fmt.Errorf("%s: %v is not a caller kind (%s or %s)", CallersExt, v, CallerUser, CallerClient)
		}
		if slices.Contains(kinds, k) {
			return false, fmt.Errorf("%s: %q is listed twice", CallersExt, k)
		}
		kinds = append(kinds, k)
	}
	if !slices.Contains(kinds, CallerUser) {
		return false, fmt.Errorf("%s: an operation for machine clients alone is not supported; list %s", CallersExt, CallerUser)
	}
	return !slices.Contains(kinds, CallerClient), nil
}

// checkTemplate makes sure every parameter of a path template is a whole
// segment, which is what http.ServeMux routes on.
func checkTemplate(path string) error {
	for _, seg := range strings.Split(path, "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || strings.Count(seg, "{") != 1 {
			return fmt.Errorf("path %s: parameters must be whole segments such as /{id}", path)
		}
	}
	return nil
}

// Rule returns the rule of op, or nil for an operation not in the policy.
func (p *Policy) Rule(op *openapi3.Operation) *Rule { return p.byOp[op] }

// Roles returns every global role the spec names, sorted (not the org
// roles, which organizations hold: OrgRoles).
func (p *Policy) Roles() []string {
	var roles []string
	for _, r := range p.Rules {
		for _, name := range r.GlobalRoles {
			if !slices.Contains(roles, name) {
				roles = append(roles, name)
			}
		}
	}
	sort.Strings(roles)
	return roles
}

// OrgRoles returns every org role the spec names (x-roles' org:<role>),
// sorted.
func (p *Policy) OrgRoles() []string {
	var roles []string
	for _, r := range p.Rules {
		for _, name := range r.OrgRoles {
			if name != AnyMember && !slices.Contains(roles, name) {
				roles = append(roles, name)
			}
		}
	}
	sort.Strings(roles)
	return roles
}
