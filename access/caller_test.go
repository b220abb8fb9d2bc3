package access_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/token"
)

type otherKey struct{}

// Admit fills a request's slot in place, and derives a context where
// there is none or it is filled; Caller and OrgRoles read either, the
// nearest value winning, and every other key passes through the slot.
func TestAdmit(t *testing.T) {
	alice, bob := &token.Claims{UserID: 1}, &token.Claims{UserID: 2}
	base := context.WithValue(context.Background(), otherKey{}, "kept")
	for _, tt := range []struct {
		name       string
		ctx        func() context.Context
		admit      func(context.Context) context.Context
		inPlace    bool
		wantCaller *token.Claims
		wantRoles  []string
	}{
		{"no slot: a derived context", func() context.Context { return base },
			func(c context.Context) context.Context { return access.Admit(c, alice, false, nil) }, false, alice, nil},
		{"an empty slot: filled in place", func() context.Context { return access.Slot(base) },
			func(c context.Context) context.Context { return access.Admit(c, alice, false, nil) }, true, alice, nil},
		{"an org operation: its roles too", func() context.Context { return access.Slot(base) },
			func(c context.Context) context.Context { return access.Admit(c, alice, true, []string{"org:viewer"}) }, true, alice, []string{"org:viewer"}},
		{"no slot, an org operation", func() context.Context { return base },
			func(c context.Context) context.Context { return access.Admit(c, alice, true, []string{"org:owner"}) }, false, alice, []string{"org:owner"}},
		{"a filled slot: derived, the later caller nearer", func() context.Context { return access.Admit(access.Slot(base), bob, true, []string{"org:owner"}) },
			func(c context.Context) context.Context { return access.Admit(c, alice, false, nil) }, false, alice, []string{"org:owner"}},
		{"WithCaller over a filled slot wins", func() context.Context { return access.Admit(access.Slot(base), bob, false, nil) },
			func(c context.Context) context.Context { return access.WithCaller(c, alice) }, false, alice, nil},
		{"an empty slot answers for its parent", func() context.Context { return access.Slot(access.WithCaller(base, bob)) },
			func(c context.Context) context.Context { return c }, true, bob, nil},
		{"a nil caller is not recorded in the slot", func() context.Context { return access.Slot(base) },
			func(c context.Context) context.Context { return access.Admit(c, nil, false, nil) }, false, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx()
			got := tt.admit(ctx)
			if inPlace := got == ctx; inPlace != tt.inPlace {
				t.Errorf("same context %v, want %v", inPlace, tt.inPlace)
			}
			if c := access.Caller(got); c != tt.wantCaller {
				t.Errorf("Caller %+v, want %+v", c, tt.wantCaller)
			}
			if r := access.OrgRoles(got); !slices.Equal(r, tt.wantRoles) {
				t.Errorf("OrgRoles %q, want %q", r, tt.wantRoles)
			}
			if v := got.Value(otherKey{}); v != "kept" {
				t.Errorf("the parent's value: %v", v)
			}
		})
	}
}

// A slot is cancelled with its parent.
func TestSlotFollowsItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := access.Slot(parent)
	access.Admit(ctx, &token.Claims{UserID: 1}, false, nil)
	cancel()
	<-ctx.Done()
	if ctx.Err() != context.Canceled {
		t.Errorf("Err %v", ctx.Err())
	}
}
