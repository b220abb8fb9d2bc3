package handlers

import (
	"context"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/page"
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

// ownedListParams are the parameters of every list of one owner's items,
// newest first (queries/<tag>.sql: ListNotes, ListDocuments).
type ownedListParams = db.ListNotesParams

// ownedPage returns a page of the items of the owner the caller may list
// (listOwner, from asked), after cursor, of at most limit items: list
// fetches the rows, item converts them. Returns 403 as listOwner does and
// 400 for a cursor this API did not make.
func ownedPage[Row, Item any](ctx context.Context, asked *int64, cursor *string, limit *int,
	list func(ownedListParams) ([]Row, error), pos func(Row) page.Cursor, item func(Row) Item) ([]Item, *string, error) {
	owner, err := listOwner(ctx, asked)
	if err != nil {
		return nil, nil, err
	}
	cur, after, err := page.Parse(cursor)
	if err != nil {
		return nil, nil, err
	}
	max := page.Limit(limit)
	rows, err := list(ownedListParams{
		OwnerID:        owner,
		After:          after,
		AfterCreatedAt: pgtype.Timestamptz{Time: cur.At, Valid: true},
		AfterID:        cur.ID,
		MaxRows:        max + 1, // one more tells whether a next page exists
	})
	if err != nil {
		return nil, nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, max, pos, item)
	return items, next, nil
}
