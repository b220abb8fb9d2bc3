package access

import (
	"context"

	"github.com/rolegate/rolegate/token"
)

type callerKey struct{}

// WithCaller returns ctx carrying the verified claims of the request's
// bearer token. The gate records them with Admit instead.
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
// organization, as WithOrgRoles or Admit set them; shared: do not modify
// them.
func OrgRoles(ctx context.Context) []string {
	r, _ := ctx.Value(orgRolesKey{}).([]string)
	return r
}

// Slot returns ctx with room for the caller of the request it is made
// for, which Admit fills in place. A server makes one per request, in the
// context it gives the request anyway (see httplog.Options.Context), so
// that admitting a caller costs no further copy of the request: the
// pattern of chi's route context, a record made once and filled as the
// request is routed. The slot belongs to one request, and is filled on
// the goroutine serving it before its handler runs.
func Slot(ctx context.Context) context.Context {
	return &slot{Context: ctx}
}

// Admit records the caller of a request the gate has let through, and
// its roles within the operation's organization (orgOp: an operation of
// x-org), for Caller and OrgRoles. It fills ctx's empty slot and returns
// ctx itself; without one (or once filled), it returns a context derived
// from ctx that carries them.
func Admit(ctx context.Context, c *token.Claims, orgOp bool, orgRoles []string) context.Context {
	if s, ok := ctx.Value(slotKey{}).(*slot); ok && s.caller == nil && c != nil {
		s.caller, s.orgOp, s.orgRoles = c, orgOp, orgRoles
		return ctx
	}
	ctx = WithCaller(ctx, c)
	if orgOp {
		ctx = WithOrgRoles(ctx, orgRoles)
	}
	return ctx
}

type slotKey struct{}

// slot is a context with a request's caller in it, once Admit has
// recorded one; until then it answers for its parent.
type slot struct {
	context.Context
	caller   *token.Claims
	orgOp    bool
	orgRoles any // []string, boxed once
}

// Value answers the keys of Caller and OrgRoles from the slot once it is
// filled (values set later with WithCaller or WithOrgRoles, nearer, still
// win), and every other key from the parent.
func (s *slot) Value(key any) any {
	switch key.(type) {
	case slotKey:
		return s
	case callerKey:
		if s.caller != nil {
			return s.caller
		}
	case orgRolesKey:
		if s.orgOp {
			return s.orgRoles
		}
	}
	return s.Context.Value(key)
}
