package accounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/migrate"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/problem"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Bootstrap stores BootstrapEmail as its own canonical form.
func TestBootstrapEmailIsCanonical(t *testing.T) {
	if got, err := email.Canonical(accounts.BootstrapEmail); err != nil || got != accounts.BootstrapEmail {
		t.Errorf("Canonical(%q) = %q, %v; want itself", accounts.BootstrapEmail, got, err)
	}
}

// canonicalEmails returns users.canonical_email by id.
func canonicalEmails(t *testing.T, pool *pgxpool.Pool) map[int64]*string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), "SELECT id, canonical_email FROM users")
	got := map[int64]*string{}
	var id int64
	var key *string
	if _, err := pgx.ForEachRow(rows, []any{&id, &key}, func() error { got[id] = key; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func ptr(s string) *string { return &s }

// Accounts that an old release created, whose emails PostgreSQL's lower()
// told apart: upgrading to step 3 gives each its canonical email, except
// those without one and those that would share one, which are reported
// by id and never merged.
func TestEmailBackfillReportsCollisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testdb.EmptyURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	steps, err := migrate.Parse(rolegate.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 3 || steps[2].Name != "canonical emails" {
		t.Fatalf("step 3 is not the canonical emails: %+v", steps)
	}
	if _, err := migrate.Apply(ctx, pool, steps[:2], nil); err != nil {
		t.Fatal(err)
	}
	old := []string{
		1:  "Plain@Example.com",
		2:  "caf\u00e9@example.com",          // NFC
		3:  "cafe\u0301@example.com",         // NFD: the same address
		4:  "\uff42\uff4f\uff42@example.com", // fullwidth bob
		5:  "admin@localhost",                // the bootstrap administrator
		6:  "bob@example.com",                // the same as 4
		7:  "zero\u200bwidth@example.com",    // no canonical form
		8:  "dora@b\u00fccher.example",       // IDN, Unicode
		9:  "Eve <eve@example.com>",          // from `user add` before emails were checked
		10: "dora@XN--BCHER-KVA.example",     // the same as 8
		11: "carol@example.com",
		12: "\uff43\uff41\uff46\u00e9@example.com", // fullwidth café, the same as 2 and 3
	}
	for _, addr := range old[1:] {
		if _, err := pool.Exec(ctx, "INSERT INTO users (email, password_hash) VALUES ($1, 'x')", addr); err != nil {
			t.Fatalf("an old release could store %+q: %v", addr, err)
		}
	}

	res, err := migrate.Apply(ctx, pool, steps, rolegate.SchemaHooks())
	if err != nil {
		t.Fatal(err)
	}
	want := []migrate.Warning{
		{Version: 3, Message: "user 7 cannot log in: its email is not a usable email address: it contains U+200B, a control, format, invisible or space character"},
		{Version: 3, Message: "user 9 cannot log in: its email is not a usable email address: it contains U+0020, a control, format, invisible or space character"},
		{Version: 3, Message: "users 2, 3, 12 cannot log in: their emails share one canonical form; accounts are never merged"},
		{Version: 3, Message: "users 4, 6 cannot log in: their emails share one canonical form; accounts are never merged"},
		{Version: 3, Message: "users 8, 10 cannot log in: their emails share one canonical form; accounts are never merged"},
	}
	if diff := cmp.Diff(want, res.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	wantKeys := map[int64]*string{
		1: ptr("plain@example.com"), 2: nil, 3: nil, 4: nil, 5: ptr("admin@localhost"), 6: nil,
		7: nil, 8: nil, 9: nil, 10: nil, 11: ptr("carol@example.com"), 12: nil,
	}
	if diff := cmp.Diff(wantKeys, canonicalEmails(t, pool)); diff != "" {
		t.Errorf("canonical_email by id (-want +got):\n%s", diff)
	}
	var emails int
	if err := pool.QueryRow(ctx, "SELECT count(DISTINCT email) FROM users").Scan(&emails); err != nil || emails != len(old)-1 {
		t.Errorf("%d distinct emails after the upgrade (err %v), want all %d kept as typed", emails, err, len(old)-1)
	}

	// Once an administrator deletes the extra accounts, the hook, run again,
	// gives the one left its key; a row sharing an assigned key is reported.
	if _, err := pool.Exec(ctx, "DELETE FROM users WHERE id IN (3, 12)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE users SET canonical_email = 'bob@example.com' WHERE id = 6"); err != nil {
		t.Fatal(err)
	}
	var again []string
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		again, err = accounts.AssignCanonicalEmails(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantAgain := []string{
		"user 7 cannot log in: its email is not a usable email address: it contains U+200B, a control, format, invisible or space character",
		"user 9 cannot log in: its email is not a usable email address: it contains U+0020, a control, format, invisible or space character",
		"user 4 cannot log in: the canonical form of the email is user 6's; accounts are never merged",
		"users 8, 10 cannot log in: their emails share one canonical form; accounts are never merged",
	}
	if diff := cmp.Diff(wantAgain, again); diff != "" {
		t.Errorf("warnings of a second run (-want +got):\n%s", diff)
	}
	if got := canonicalEmails(t, pool)[2]; got == nil || *got != "caf\u00e9@example.com" {
		t.Errorf("user 2's canonical email after the duplicates went: %v", got)
	}
}

// hasher stands in for the password pool: these tests are about emails.
type hasher struct{}

func (hasher) Hash(context.Context, string) (string, error) { return "$test$", nil }

func TestCreateByCanonicalEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	const pw = "a long enough password"
	if _, err := accounts.Create(ctx, pool, hasher{}, "kate@example.com", pw, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, addr string
		kind       problem.Kind
	}{
		{"Kelvin sign", "\u212Aate@example.com", problem.Conflict},
		{"upper case", "KATE@EXAMPLE.COM", problem.Conflict},
		{"zero-width space", "ka\u200bte@example.com", problem.Invalid},
		{"right-to-left override", "\u202eetak@example.com", problem.Invalid},
		{"display name", "Kate <kate@example.com>", problem.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := accounts.Create(ctx, pool, hasher{}, tt.addr, pw, nil)
			pe, ok := errors.AsType[*problem.Error](err)
			if !ok || pe.Kind != tt.kind {
				t.Fatalf("Create(%+q) = %v, want a problem of kind %d", tt.addr, err, tt.kind)
			}
			if tt.kind == problem.Invalid {
				if len(pe.Fields) != 1 || pe.Fields[0].Field != "body.email" || !errors.Is(err, email.ErrInvalid) {
					t.Errorf("Create(%+q) = %+v, want a problem naming body.email", tt.addr, pe)
				}
			}
		})
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d accounts (err %v), want 1", n, err)
	}
}

// TestBootstrapIsVerified: the first administrator's address has no
// mailbox, so it counts as verified (or ROLEGATE_REQUIRE_VERIFIED_EMAIL
// would lock it out); a second start creates nothing.
func TestBootstrapIsVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	created, generated, err := accounts.Bootstrap(ctx, pool, hasher{}, "")
	if err != nil || !created || generated == "" {
		t.Fatalf("Bootstrap = %v, %q, %v", created, generated, err)
	}
	var verified bool
	if err := pool.QueryRow(ctx, `SELECT email_verified_at IS NOT NULL FROM users WHERE email = $1`, accounts.BootstrapEmail).Scan(&verified); err != nil || !verified {
		t.Errorf("the first administrator is not verified (%v)", err)
	}
	if again, _, err := accounts.Bootstrap(ctx, pool, hasher{}, ""); err != nil || again {
		t.Errorf("a second Bootstrap = %v, %v; want nothing created", again, err)
	}
}
