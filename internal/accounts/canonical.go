package accounts

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/internal/email"
)

// AssignCanonicalEmails gives every account without a canonical email (the
// users.canonical_email column) the canonical form of its email, in tx; it
// is schema step 3's hook (migrate.Hook). Accounts are never merged: an
// account whose email has no canonical form, and every account whose
// canonical form it would share with another, keeps none and so cannot log
// in. One warning per such problem names the account ids and says why; the
// warnings do not repeat the addresses, which are personal data.
//
// It reads and writes with its own SQL, written against the schema as of
// step 3, rather than with the generated queries, which follow the latest.
func AssignCanonicalEmails(ctx context.Context, tx pgx.Tx) (warnings []string, err error) {
	rows, _ := tx.Query(ctx, "SELECT id, email, canonical_email FROM users ORDER BY id")
	var (
		id      int64
		addr    string
		key     *string
		holder  = map[string]int64{}   // canonical form → the account that has it
		pending = map[string][]int64{} // canonical form → accounts that would get it, by id
		order   []string               // the keys of pending, by their first account
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &addr, &key}, func() error {
		if key != nil {
			holder[*key] = id
			return nil
		}
		k, err := email.Canonical(addr)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("user %d cannot log in: its email is %v", id, err))
			return nil
		}
		if pending[k] == nil {
			order = append(order, k)
		}
		pending[k] = append(pending[k], id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: read emails: %w", err)
	}
	var ids []int64
	var keys []string
	for _, k := range order {
		owners := pending[k]
		if h, ok := holder[k]; ok {
			warnings = append(warnings, fmt.Sprintf("%s cannot log in: the canonical form of the email is user %d's; accounts are never merged", idList(owners), h))
		} else if len(owners) > 1 {
			warnings = append(warnings, fmt.Sprintf("%s cannot log in: their emails share one canonical form; accounts are never merged", idList(owners)))
		} else {
			ids = append(ids, owners[0])
			keys = append(keys, k)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET canonical_email = k.key
FROM unnest($1::bigint[], $2::text[]) AS k (id, key)
WHERE users.id = k.id`, ids, keys); err != nil {
		return nil, fmt.Errorf("accounts: assign canonical emails: %w", err)
	}
	return warnings, nil
}

// idList names accounts: "user 7", "users 7, 9".
func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) == 1 {
		return "user " + s[0]
	}
	return "users " + strings.Join(s, ", ")
}

// RepairCanonicalEmails runs AssignCanonicalEmails again, in a transaction
// of its own, when some account has no canonical email: one an older
// replica created during an upgrade, or one of a collision that an operator
// has since resolved. It returns the warnings of the accounts it still
// cannot give one.
func RepairCanonicalEmails(ctx context.Context, pool *pgxpool.Pool) (warnings []string, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var missing bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE canonical_email IS NULL)").Scan(&missing); err != nil || !missing {
			return err
		}
		warnings, err = AssignCanonicalEmails(ctx, tx)
		return err
	})
	return warnings, err
}
