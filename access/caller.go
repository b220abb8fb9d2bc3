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
