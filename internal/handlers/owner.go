package handlers

import (
	"context"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/problem"
)

// listOwner returns whose items the caller lists: its own, or, for an
// admin, those of the owner asked for. Anyone else asking for another's
// items is refused with 403.
func listOwner(ctx context.Context, asked *int64) (int64, error) {
	own := access.Caller(ctx).UserID
	if asked == nil || *asked == own {
		return own, nil
	}
	if !seesAll(ctx) {
		return 0, problem.InsufficientScope("Only an admin may list another user's items.")
	}
	return *asked, nil
}

// seesAll reports whether the caller may see every user's notes and
// documents.
func seesAll(ctx context.Context) bool {
	return access.Caller(ctx).HasAnyRole(seeAllRoles)
}

var seeAllRoles = []string{accounts.AdminRole}
