package access

import (
	"context"

	"github.com/rolegate/rolegate/token"
)

type callerKey struct{}

// WithCaller returns ctx carrying the verified claims of the request's
// bearer token, as the gate does before a secured operation's handler runs.
func WithCaller(ctx context.Context, c *token.Claims) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// Caller returns the verified claims of the request's bearer token, or nil
// on a public operation. The claims are shared: do not modify them.
func Caller(ctx context.Context) *token.Claims {
	c, _ := ctx.Value(callerKey{}).(*token.Claims)
	return c
}

type orgRolesKey struct{}

// WithOrgRoles returns ctx carrying the caller's roles within the
// organization of an operation of x-org, as the gate found them (nil for
// one it admitted by a global role without being a member).
func WithOrgRoles(ctx context.Context, roles []string) context.Context {
	return context.WithValue(ctx, orgRolesKey{}, roles)
}

// OrgRoles returns the caller's roles within the operation's
// organization, as WithOrgRoles set them; shared: do not modify them.
func OrgRoles(ctx context.Context) []string {
	r, _ := ctx.Value(orgRolesKey{}).([]string)
	return r
}
