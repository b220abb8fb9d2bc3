package orgs_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// newUsers creates n accounts and returns their ids.
func newUsers(tb testing.TB, pool *pgxpool.Pool, n int) []int64 {
	tb.Helper()
	q := db.New(pool)
	ids := make([]int64, n)
	for i := range ids {
		email := fmt.Sprintf("member%d-%d@example.com", i, time.Now().UnixNano())
		row, err := q.CreateUser(context.Background(), db.CreateUserParams{Email: email, CanonicalEmail: email, PasswordHash: "x"})
		if err != nil {
			tb.Fatal(err)
		}
		ids[i] = row.ID
	}
	return ids
}

func mustCreate(tb testing.TB, s *orgs.Store, creator int64, slug string) orgs.Org {
	tb.Helper()
	o, err := s.Create(context.Background(), creator, slug, "The "+slug)
	if err != nil {
		tb.Fatalf("Create %s: %v", slug, err)
	}
	return o
}

func ids(os []orgs.Org) []int64 {
	out := []int64{}
	for _, o := range os {
		out = append(out, o.ID)
	}
	return out
}

func TestCreateGetListDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 2)

	a := mustCreate(t, s, u[0], "acme")
	if a.ID == 0 || a.Slug != "acme" || a.Name != "The acme" || a.CreatedBy != u[0] || a.CreatedAt.IsZero() {
		t.Errorf("Create = %+v", a)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("Get (-created +got):\n%s", diff)
	}
	b := mustCreate(t, s, u[0], "beta-2")
	c := mustCreate(t, s, u[1], "gamma")

	refusals := []struct {
		name    string
		creator int64
		slug    string
		orgName string
		want    error
	}{
		{"slug taken", u[1], "acme", "Other", orgs.ErrSlugTaken},
		{"slug too short", u[1], "a", "Other", orgs.ErrInvalidSlug},
		{"slug too long", u[1], strings.Repeat("a", 65), "Other", orgs.ErrInvalidSlug},
		{"slug in capitals", u[1], "Acme", "Other", orgs.ErrInvalidSlug},
		{"slug with a space", u[1], "ac me", "Other", orgs.ErrInvalidSlug},
		{"empty name", u[1], "other", "", orgs.ErrInvalidName},
		{"name too long", u[1], "other", strings.Repeat("é", 201), orgs.ErrInvalidName},
		{"name not UTF-8", u[1], "other", "\xff", orgs.ErrInvalidName},
		{"no such creator", 1 << 40, "other", "Other", orgs.ErrNotFound},
	}
	for _, tt := range refusals {
		if _, err := s.Create(ctx, tt.creator, tt.slug, tt.orgName); !errors.Is(err, tt.want) {
			t.Errorf("%s: Create = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.Create(ctx, u[1], strings.Repeat("z", 64), strings.Repeat("é", 200)); err != nil {
		t.Errorf("the longest slug and name: %v", err)
	}

	lists := []struct {
		name  string
		user  int64
		after int64
		limit int32
		want  []int64
	}{
		{"all of the first creator's", u[0], 0, 10, []int64{a.ID, b.ID}},
		{"a page of one", u[0], 0, 1, []int64{a.ID}},
		{"the next page", u[0], a.ID, 1, []int64{b.ID}},
		{"past the last", u[0], b.ID, 10, []int64{}},
		{"the second creator's", u[1], 0, 1, []int64{c.ID}},
		{"nobody's", 1 << 40, 0, 10, []int64{}},
	}
	for _, tt := range lists {
		got, err := s.ListFor(ctx, tt.user, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("%s: ListFor (-want +got):\n%s", tt.name, diff)
		}
	}

	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, orgs.ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := s.Delete(ctx, a.ID); !errors.Is(err, orgs.ErrNotFound) {
		t.Errorf("Delete again = %v", err)
	}
	if _, err := s.Members(ctx, a.ID, 0, 10); !errors.Is(err, orgs.ErrNotFound) {
		t.Errorf("Members after Delete = %v", err)
	}
	if got, _ := s.ListFor(ctx, u[0], 0, 10); !cmp.Equal(ids(got), []int64{b.ID}) {
		t.Errorf("ListFor after Delete = %v, want [%d]", ids(got), b.ID)
	}
	// The creator's account goes; the organization stays.
	if _, err := pool.Exec(ctx, "DELETE FROM users WHERE id = $1", u[1]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, c.ID); err != nil || got.CreatedBy != 0 {
		t.Errorf("Get after the creator's deletion = %+v, %v; want CreatedBy 0", got, err)
	}
}

type member struct {
	UserID int64
	Roles  []string
}

func members(tb testing.TB, s *orgs.Store, org int64) []member {
	tb.Helper()
	ms, err := s.Members(context.Background(), org, 0, 100)
	if err != nil {
		tb.Fatal(err)
	}
	out := []member{}
	for _, m := range ms {
		out = append(out, member{m.UserID, m.Roles})
	}
	return out
}

// The steps of a membership's life, in order, each with what it must
// return; then who is a member with which roles.
func TestMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 4)
	org := mustCreate(t, s, u[0], "members").ID
	other := mustCreate(t, s, u[3], "other").ID
	const none = int64(1 << 40)

	type op struct {
		name     string
		do       func() ([]string, error)
		want     error
		previous []string
	}
	set := func(o, user int64, roles ...string) func() ([]string, error) {
		return func() ([]string, error) { return s.SetMember(ctx, o, user, roles) }
	}
	remove := func(o, user int64) func() ([]string, error) {
		return func() ([]string, error) { return nil, s.RemoveMember(ctx, o, user) }
	}
	role := func(o int64, name string) func() ([]string, error) {
		return func() ([]string, error) { return nil, s.CreateRole(ctx, o, name) }
	}
	steps := []op{
		{"add a viewer", set(org, u[1], orgs.Viewer), nil, nil},
		{"change its roles (sorted, once each)", set(org, u[1], orgs.Viewer, orgs.Editor, orgs.Viewer), nil, []string{orgs.Viewer}},
		{"no roles", set(org, u[1]), orgs.ErrNoRoles, nil},
		{"a role the organization lacks", set(org, u[1], "billing"), orgs.ErrUnknownRole, nil},
		{"not a role name", set(org, u[1], "Billing!"), orgs.ErrUnknownRole, nil},
		{"no such account", set(org, none, orgs.Viewer), orgs.ErrNotFound, nil},
		{"no such organization", set(none, u[1], orgs.Viewer), orgs.ErrNotFound, nil},
		{"create a role", role(org, "billing"), nil, nil},
		{"create it again", role(org, "billing"), orgs.ErrRoleExists, nil},
		{"create a built-in role", role(org, orgs.Owner), orgs.ErrRoleExists, nil},
		{"create a role badly named", role(org, "Billing"), orgs.ErrInvalidRole, nil},
		{"create a role in no organization", role(none, "billing"), orgs.ErrNotFound, nil},
		{"the role created is usable", set(org, u[2], "billing", orgs.Viewer), nil, nil},
		{"but not in another organization", set(other, u[2], "billing"), orgs.ErrUnknownRole, nil},
		{"remove a non-member", remove(org, u[3]), orgs.ErrNotFound, nil},
		{"remove from no organization", remove(none, u[1]), orgs.ErrNotFound, nil},
		{"demote the last owner", set(org, u[0], orgs.Viewer), orgs.ErrLastOwner, nil},
		{"remove the last owner", remove(org, u[0]), orgs.ErrLastOwner, nil},
		{"another owner", set(org, u[1], orgs.Owner), nil, []string{orgs.Editor, orgs.Viewer}},
		{"now the first may go", remove(org, u[0]), nil, nil},
		{"but not the second", remove(org, u[1]), orgs.ErrLastOwner, nil},
		{"an owner who is also an editor keeps owning", set(org, u[1], orgs.Editor, orgs.Owner), nil, []string{orgs.Owner}},
	}
	for _, st := range steps {
		previous, err := st.do()
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
		if diff := cmp.Diff(st.previous, previous); diff != "" {
			t.Errorf("%s: previous roles (-want +got):\n%s", st.name, diff)
		}
	}
	want := []member{{u[1], []string{orgs.Editor, orgs.Owner}}, {u[2], []string{"billing", orgs.Viewer}}}
	if diff := cmp.Diff(want, members(t, s, org)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	page, err := s.Members(ctx, org, u[1], 1)
	if err != nil || len(page) != 1 || page[0].UserID != u[2] || !strings.HasPrefix(page[0].Email, "member2-") {
		t.Errorf("the second page = %+v, %v", page, err)
	}
	if page, err := s.Members(ctx, org, u[2], 1); err != nil || len(page) != 0 {
		t.Errorf("past the last page = %+v, %v; want none", page, err)
	}
	roles, err := s.Roles(ctx, org)
	if diff := cmp.Diff([]string{orgs.Owner, orgs.Editor, orgs.Viewer, "billing"}, roles); err != nil || diff != "" {
		t.Errorf("Roles (-want +got), %v:\n%s", err, diff)
	}
	if roles, err := s.Roles(ctx, other); err != nil || !cmp.Equal(roles, orgs.BuiltInRoles) {
		t.Errorf("Roles of an organization with none of its own = %v, %v", roles, err)
	}
	if _, err := s.Roles(ctx, none); !errors.Is(err, orgs.ErrNotFound) {
		t.Errorf("Roles of no organization = %v", err)
	}
}

func TestTooManyRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	org := mustCreate(t, s, newUsers(t, pool, 1)[0], "many").ID
	for i := range orgs.MaxCustomRoles {
		if err := s.CreateRole(ctx, org, "r"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRole(ctx, org, "one-more"); !errors.Is(err, orgs.ErrTooManyRoles) {
		t.Errorf("role %d: %v, want ErrTooManyRoles", orgs.MaxCustomRoles+1, err)
	}
}

// 20 owners each take their own role away at once: all but one succeed,
// and exactly one owner remains; the same for 20 owners leaving.
func TestLastOwnerUnderConcurrency(t *testing.T) {
	t.Parallel()
	const owners = 20
	tests := []struct {
		name   string
		change func(s *orgs.Store, org, user int64) error
	}{
		{"demotions", func(s *orgs.Store, org, user int64) error {
			_, err := s.SetMember(context.Background(), org, user, []string{orgs.Viewer})
			return err
		}},
		{"removals", func(s *orgs.Store, org, user int64) error {
			return s.RemoveMember(context.Background(), org, user)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// A connection for each change, so that all of them are in
			// flight at once.
			u, err := url.Parse(testdb.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			query := u.Query()
			query.Set("pool_max_conns", strconv.Itoa(owners+2))
			u.RawQuery = query.Encode()
			pool := testdb.Open(t, u.String())
			s := orgs.NewStore(pool, nil, nil)
			ids := newUsers(t, pool, owners)
			org := mustCreate(t, s, ids[0], "owned").ID
			// Every connection open before the start, so that none of the
			// changes waits for one.
			conns := make([]*pgxpool.Conn, owners)
			for i := range conns {
				if conns[i], err = pool.Acquire(ctx); err != nil {
					// The pool closes once every connection is back.
					for _, c := range conns[:i] {
						c.Release()
					}
					t.Fatal(err)
				}
			}
			for _, c := range conns {
				c.Release()
			}
			// A few rounds: without the lock, a round's changes do not
			// always overlap enough to take every owner away.
			for round := range 3 {
				for _, id := range ids {
					if _, err := s.SetMember(ctx, org, id, []string{orgs.Owner}); err != nil {
						t.Fatal(err)
					}
				}
				start := make(chan struct{})
				errs := make([]error, owners)
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() {
						<-start
						errs[i] = tt.change(s, org, id)
					})
				}
				close(start)
				wg.Wait()
				var ok, last int
				for i, err := range errs {
					switch {
					case err == nil:
						ok++
					case errors.Is(err, orgs.ErrLastOwner):
						last++
					default:
						t.Errorf("round %d, owner %d: %v", round, i, err)
					}
				}
				if ok != owners-1 || last != 1 {
					t.Errorf("round %d: %d succeeded and %d were refused as the last owner; want %d and 1", round, ok, last, owners-1)
				}
				var remaining int
				if err := pool.QueryRow(ctx, "SELECT count(*) FROM org_members WHERE org_id = $1 AND 'owner' = ANY (roles)", org).Scan(&remaining); err != nil {
					t.Fatal(err)
				}
				if remaining != 1 {
					t.Fatalf("round %d: %d owners remain, want 1", round, remaining)
				}
			}
		})
	}
}

// Deleting an organization deletes its roles and memberships, logs each
// membership and the deletion, and notifies the channel.
func TestDeleteNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 3)
	org := mustCreate(t, s, u[0], "doomed").ID
	kept := mustCreate(t, s, u[0], "kept").ID
	for _, id := range u[1:] {
		if _, err := s.SetMember(ctx, org, id, []string{orgs.Viewer}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRole(ctx, org, "billing"); err != nil {
		t.Fatal(err)
	}
	m := orgs.NewMemberships(nil)
	if err := m.CatchUp(ctx, db.New(pool)); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 4 {
		t.Fatalf("%d memberships before, want 4", m.Len())
	}
	var before int64
	if err := pool.QueryRow(ctx, "SELECT max(seq) FROM org_changes").Scan(&before); err != nil {
		t.Fatal(err)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+orgs.Channel); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, org); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := conn.Conn().WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	seq, err := strconv.ParseInt(n.Payload, 10, 64)
	if n.Channel != orgs.Channel || err != nil || seq <= before {
		t.Errorf("notification %s %q, want the channel %s and a seq after %d", n.Channel, n.Payload, orgs.Channel, before)
	}

	rows, err := pool.Query(ctx, "SELECT org_id, coalesce(user_id, 0), kind FROM org_changes WHERE seq > $1 ORDER BY kind, user_id", before)
	if err != nil {
		t.Fatal(err)
	}
	type change struct {
		Org, User int64
		Kind      string
	}
	var logged []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.Org, &c.User, &c.Kind); err != nil {
			t.Fatal(err)
		}
		logged = append(logged, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []change{{org, 0, "deleted"}, {org, u[0], "member"}, {org, u[1], "member"}, {org, u[2], "member"}}
	if diff := cmp.Diff(want, logged); diff != "" {
		t.Errorf("logged (-want +got):\n%s", diff)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM org_members WHERE org_id = $1) + (SELECT count(*) FROM org_roles WHERE org_id = $1)", org).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d members and roles outlived their organization", left)
	}

	if err := m.CatchUp(ctx, db.New(pool)); err != nil {
		t.Fatal(err)
	}
	for _, id := range u {
		if roles, ok := m.RolesIn(id, org); ok {
			t.Errorf("user %d still holds %v in the deleted organization", id, roles)
		}
	}
	if roles, ok := m.RolesIn(u[0], kept); !ok || !cmp.Equal(roles, []string{orgs.Owner}) {
		t.Errorf("the other organization's owner: %v, %v", roles, ok)
	}
}

// Deleting an account deletes its memberships, which the log records, so
// that every replica forgets them.
func TestDeletingAnAccountIsLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 2)
	a, b := mustCreate(t, s, u[0], "one").ID, mustCreate(t, s, u[0], "two").ID
	for _, o := range []int64{a, b} {
		if _, err := s.SetMember(ctx, o, u[1], []string{orgs.Editor}); err != nil {
			t.Fatal(err)
		}
	}
	m := orgs.NewMemberships(nil)
	q := db.New(pool)
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.RolesIn(u[1], b); !ok {
		t.Fatal("not a member before")
	}
	if _, err := pool.Exec(ctx, "DELETE FROM users WHERE id = $1", u[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	for _, o := range []int64{a, b} {
		if roles, ok := m.RolesIn(u[1], o); ok {
			t.Errorf("the deleted account still holds %v in %d", roles, o)
		}
	}
	if m.Len() != 2 {
		t.Errorf("%d memberships, want the owner's 2", m.Len())
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	s := orgs.NewStore(pool, nil, nil)
	mustCreate(t, s, newUsers(t, pool, 1)[0], "pruned")
	if _, err := pool.Exec(ctx, "UPDATE org_changes SET created_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newUsers(t, pool, 1)[0], "recent")
	if err := s.Prune(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM org_changes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d changes after pruning, want the recent one", n)
	}
}
