package handlers

import (
	"context"
	"math"

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
func listOwner(ctx context.Context, asked *int64, seeAll []string) (int64, error) {
	own := access.Caller(ctx).UserID
	if asked == nil || *asked == own {
		return own, nil
	}
	if !access.Caller(ctx).HasAnyRole(seeAll) {
		return 0, problem.InsufficientScope("Only an admin may list another user's items.", seeAll)
	}
	return *asked, nil
}

// The roles that see every user's items: admins see all notes; admins and
// the machine role system (a client that processes documents, say) see all
// documents.
var (
	seeAllNotes     = []string{accounts.AdminRole}
	seeAllDocuments = []string{accounts.AdminRole, systemRole}
)

// systemRole is the spec's role for programs.
const systemRole = "system"

// seesAll reports whether the caller holds one of the roles that see every
// user's items of a kind.
func seesAll(ctx context.Context, roles []string) bool {
	return access.Caller(ctx).HasAnyRole(roles)
}

// ownedListParams are the parameters of every list of one owner's items,
// newest first (queries/<tag>.sql: ListNotes, ListDocuments).
type ownedListParams = db.ListNotesParams

// ownedPage returns a page of the items of the owner the caller may list
// (listOwner, from asked), after cursor, of at most limit items: list
// fetches the rows, item converts them. Returns 403 as listOwner does and
// 400 for a cursor this API did not make.
func ownedPage[Row, Item any](ctx context.Context, seeAll []string, asked *int64, cursor *string, limit *int,
	list func(ownedListParams) ([]Row, error), pos func(Row) page.Cursor, item func(Row) Item) ([]Item, *string, error) {
	owner, err := listOwner(ctx, asked, seeAll)
	if err != nil {
		return nil, nil, err
	}
	cur, after, err := page.Parse(cursor)
	if err != nil {
		return nil, nil, err
	}
	max := page.Limit(limit)
	at, id := before(cur, after)
	rows, err := list(ownedListParams{
		OwnerID:         owner,
		BeforeCreatedAt: at,
		BeforeID:        id,
		MaxRows:         max + 1, // one more tells whether a next page exists
	})
	if err != nil {
		return nil, nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, max, pos, item)
	return items, next, nil
}

// before is the keyset bound of a list newest first: the cursor's
// position, or, on the first page (after is false), one past every row
// ('infinity', the largest id), so that the queries take a bound always
// and the first page and a deep one have the same plan.
func before(cur page.Cursor, after bool) (pgtype.Timestamptz, int64) {
	if !after {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, math.MaxInt64
	}
	return pgtype.Timestamptz{Time: cur.At, Valid: true}, cur.ID
}

// errClientOwnsNothing refuses a machine client an operation that creates
// an item owned by the caller: items belong to accounts.
var errClientOwnsNothing = problem.UserAccountsOnly()

// ownerOf returns the caller's account id, as the owner of an item it
// creates, or errClientOwnsNothing for a machine client.
func ownerOf(ctx context.Context) (int64, error) {
	c := access.Caller(ctx)
	if c.ClientID != "" {
		return 0, errClientOwnsNothing
	}
	return c.UserID, nil
}
