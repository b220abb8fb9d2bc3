package access

import (
	"strconv"
	"strings"
	"time"
)

// Describe states each operation's access in its description, as read
// from its rule, so that the spec rolegate serves (and Swagger UI and the
// documentation of SDKs generated from it) says who may call what without
// anyone writing it twice: "Access: one of the roles user, admin.", "Access:
// any authenticated user." or "Access: public, no token.". It changes the
// document: call it on a copy that serves only as documentation.
func (p *Policy) Describe(s *Spec) {
	for _, item := range s.Doc.Paths.Map() {
		for _, op := range item.Operations() {
			rule := p.Rule(op)
			if rule == nil {
				continue
			}
			line := "**Access:** " + rule.accessSentence()
			if op.Description == "" {
				op.Description = line
			} else {
				op.Description = strings.TrimRight(op.Description, "\n") + "\n\n" + line
			}
		}
	}
}

// accessSentence is Access as a sentence of the served spec.
func (r *Rule) accessSentence() string {
	s := r.rolesSentence()
	if r.Org != "" {
		s = strings.TrimSuffix(s, ".") + "; an org: role is held within the organization that {" + r.Org + "} names, and a caller who is not a member of it (nor holds a listed global role) gets 404."
	}
	if r.PeopleOnly {
		s = strings.TrimSuffix(s, ".") + ", for user accounts only: a machine client's token gets 403 whatever its roles."
	}
	if r.ACR != nil {
		s += " " + r.ACR.sentence()
	}
	return s
}

// sentence states a as the served spec says it.
func (a *ACR) sentence() string {
	s := "Step-up: for an account with a second factor, a person's token must come from a sign-in with acr " + strings.Join(a.Values, " or ")
	if a.MaxAge > 0 {
		s += " within the last " + strconv.Itoa(int(a.MaxAge/time.Second)) + " seconds"
	}
	return s + "; otherwise 401 `insufficient_user_authentication` (RFC 9470)."
}

func (r *Rule) rolesSentence() string {
	switch {
	case r.Public:
		return "public, no token."
	case len(r.Roles) == 0:
		return "any authenticated user."
	case len(r.Roles) == 1:
		return "the role " + r.Roles[0] + "."
	}
	return "one of the roles " + strings.Join(r.Roles, ", ") + "."
}
