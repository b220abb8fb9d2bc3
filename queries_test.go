package rolegate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The seed's joined lookup: one user and the names of all its roles, in one
// query, whatever the number of roles, by the email's canonical form.
func TestGetUserWithRolesByCanonicalEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := db.New(testdb.New(t))
	if err := q.EnsureRoles(ctx, []string{"admin", "user", "system", "auditor"}); err != nil {
		t.Fatal(err)
	}
	users := []struct {
		email string
		roles []string
	}{
		{"none@example.com", nil},
		{"one@example.com", []string{"user"}},
		{"Three@Example.com", []string{"user", "admin", "system"}},
	}
	for _, u := range users {
		row, err := q.CreateUser(ctx, db.CreateUserParams{Email: u.email, CanonicalEmail: mustCanonical(t, u.email), PasswordHash: "$argon2id$test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.GrantRoles(ctx, db.GrantRolesParams{UserID: row.ID, Names: u.roles}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		lookup    string
		wantEmail string
		wantRoles []string
	}{
		{"none@example.com", "none@example.com", []string{}},
		{"one@example.com", "one@example.com", []string{"user"}},
		{"three@example.com", "Three@Example.com", []string{"admin", "system", "user"}},
		{"THREE@EXAMPLE.COM", "Three@Example.com", []string{"admin", "system", "user"}},
	}
	for _, tt := range tests {
		t.Run(tt.lookup, func(t *testing.T) {
			got, err := q.GetUserWithRolesByCanonicalEmail(ctx, mustCanonical(t, tt.lookup))
			if err != nil {
				t.Fatal(err)
			}
			if got.Email != tt.wantEmail || got.PasswordHash != "$argon2id$test" || got.ID == 0 {
				t.Errorf("user = %+v, want email %s", got, tt.wantEmail)
			}
			if diff := cmp.Diff(tt.wantRoles, got.Roles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		})
	}

	if _, err := q.GetUserWithRolesByCanonicalEmail(ctx, "missing@example.com"); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("missing user: err = %v, want pgx.ErrNoRows", err)
	}
}

// The canonical form is unique, and only it: the email as typed is not.
func TestCanonicalEmailIsUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := db.New(testdb.New(t))
	if _, err := q.CreateUser(ctx, db.CreateUserParams{Email: "a@example.com", CanonicalEmail: "a@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateUser(ctx, db.CreateUserParams{Email: "A@EXAMPLE.com", CanonicalEmail: "a@example.com", PasswordHash: "x"}); err == nil {
		t.Fatal("a second user with the same canonical email was accepted")
	}
	if _, err := q.CreateUser(ctx, db.CreateUserParams{Email: "a@example.com", CanonicalEmail: "other@example.com", PasswordHash: "x"}); err != nil {
		t.Fatalf("the email as typed is unique: %v", err)
	}
}

func mustCanonical(tb testing.TB, addr string) string {
	tb.Helper()
	key, err := email.Canonical(addr)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func TestDeletingUserCascades(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	if err := q.EnsureRoles(ctx, []string{"user"}); err != nil {
		t.Fatal(err)
	}
	u, err := q.CreateUser(ctx, db.CreateUserParams{Email: "gone@example.com", CanonicalEmail: "gone@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.GrantRoles(ctx, db.GrantRolesParams{UserID: u.ID, Names: []string{"user"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO notes (owner_id, document_src, title, body) VALUES ($1, 'doc', 't', 'b')", u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM users WHERE id = $1", u.ID); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM user_roles) + (SELECT count(*) FROM notes)").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d user_roles/notes rows outlived their user", left)
	}
}
