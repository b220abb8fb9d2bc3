package orgs_test

import (
	"context"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/testdb"
)

// Not parallel: AllocsPerRun counts every goroutine's allocations.
func TestRolesIn(t *testing.T) {
	m := orgs.NewMemberships(nil)
	m.Set(
		orgs.Membership{User: 1, Org: 10, Roles: []string{orgs.Owner}},
		orgs.Membership{User: 2, Org: 10, Roles: []string{orgs.Viewer, orgs.Editor}},
		orgs.Membership{User: 1, Org: 11, Roles: []string{"billing", orgs.Viewer}},
		orgs.Membership{User: 3, Org: 11, Roles: []string{orgs.Viewer, "billing"}},
	)
	tests := []struct {
		name       string
		user, org  int64
		wantRoles  []string
		wantMember bool
	}{
		{"owner", 1, 10, []string{orgs.Owner}, true},
		{"sorted", 2, 10, []string{orgs.Editor, orgs.Viewer}, true},
		{"custom role", 1, 11, []string{"billing", orgs.Viewer}, true},
		{"not a member there", 2, 11, nil, false},
		{"the ids swapped", 10, 1, nil, false},
		{"nobody", 99, 99, nil, false},
	}
	for _, tt := range tests {
		roles, member := m.RolesIn(tt.user, tt.org)
		if member != tt.wantMember || !cmp.Equal(roles, tt.wantRoles) {
			t.Errorf("%s: RolesIn(%d, %d) = %v, %v; want %v, %v", tt.name, tt.user, tt.org, roles, member, tt.wantRoles, tt.wantMember)
		}
		if n := testing.AllocsPerRun(100, func() { m.RolesIn(tt.user, tt.org) }); n != 0 {
			t.Errorf("%s: RolesIn allocates %v times", tt.name, n)
		}
	}
	// Memberships with the same roles share them.
	a, _ := m.RolesIn(1, 11)
	b, _ := m.RolesIn(3, 11)
	if unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Error("two memberships with the same roles hold two copies")
	}
	if m.Len() != 4 {
		t.Errorf("Len = %d, want 4", m.Len())
	}
	m.Set(orgs.Membership{User: 1, Org: 10}, orgs.Membership{User: 42, Org: 42})
	if _, ok := m.RolesIn(1, 10); ok || m.Len() != 3 {
		t.Errorf("after a removal: member %v, Len %d; want false, 3", ok, m.Len())
	}
}

// A set of roles no membership holds any more is freed.
func TestRoleSetsAreFreed(t *testing.T) {
	t.Parallel()
	m := orgs.NewMemberships(nil)
	m.Set(orgs.Membership{User: 1, Org: 1, Roles: []string{"temporary"}}, orgs.Membership{User: 2, Org: 1, Roles: []string{orgs.Viewer}})
	if n := m.InternedSets(); n != 2 {
		t.Fatalf("%d sets, want 2", n)
	}
	m.Set(orgs.Membership{User: 1, Org: 1})
	deadline := time.Now().Add(5 * time.Second)
	for m.InternedSets() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sets 5s after the last holder went, want 1", m.InternedSets())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if roles, ok := m.RolesIn(2, 1); !ok || !cmp.Equal(roles, []string{orgs.Viewer}) {
		t.Errorf("the set still held: %v, %v", roles, ok)
	}
}

// CatchUp loads every membership first, then follows the log.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 3)
	org := mustCreate(t, s, u[0], "followed").ID
	if _, err := s.SetMember(ctx, org, u[1], []string{orgs.Viewer}); err != nil {
		t.Fatal(err)
	}
	m := orgs.NewMemberships(nil)
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	expect := func(step string, user int64, want []string) {
		t.Helper()
		roles, ok := m.RolesIn(user, org)
		if ok != (want != nil) || !cmp.Equal(roles, want) {
			t.Errorf("%s: user %d holds %v (member %v), want %v", step, user, roles, ok, want)
		}
	}
	expect("loaded", u[0], []string{orgs.Owner})
	expect("loaded", u[1], []string{orgs.Viewer})
	expect("loaded", u[2], nil)

	if _, err := s.SetMember(ctx, org, u[1], []string{orgs.Editor}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMember(ctx, org, u[2], []string{orgs.Viewer}); err != nil {
		t.Fatal(err)
	}
	expect("before catching up", u[1], []string{orgs.Viewer})
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	expect("changed", u[1], []string{orgs.Editor})
	expect("added", u[2], []string{orgs.Viewer})
	if err := s.RemoveMember(ctx, org, u[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	expect("removed", u[1], nil)
	if m.Len() != 2 {
		t.Errorf("Len = %d, want 2", m.Len())
	}
	// Catching up again, the log's overlap read again, changes nothing.
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	expect("again", u[2], []string{orgs.Viewer})
}

// A Store given the replica's Memberships catches them up itself: the next
// request on the replica sees the change.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	m := orgs.NewMemberships(nil)
	if err := m.CatchUp(ctx, db.New(pool)); err != nil {
		t.Fatal(err)
	}
	s := orgs.NewStore(pool, m, nil)
	u := newUsers(t, pool, 2)
	org := mustCreate(t, s, u[0], "mine").ID
	if roles, ok := m.RolesIn(u[0], org); !ok || !cmp.Equal(roles, []string{orgs.Owner}) {
		t.Errorf("the creator right after Create: %v, %v", roles, ok)
	}
	if _, err := s.SetMember(ctx, org, u[1], []string{orgs.Editor}); err != nil {
		t.Fatal(err)
	}
	if roles, ok := m.RolesIn(u[1], org); !ok || !cmp.Equal(roles, []string{orgs.Editor}) {
		t.Errorf("right after SetMember: %v, %v", roles, ok)
	}
	if err := s.RemoveMember(ctx, org, u[1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.RolesIn(u[1], org); ok {
		t.Error("still a member right after RemoveMember")
	}
	if err := s.Delete(ctx, org); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.RolesIn(u[0], org); ok || m.Len() != 0 {
		t.Errorf("right after Delete: member %v, Len %d", ok, m.Len())
	}
}

// A copy that has not caught up for half of Retention (the log may have
// been pruned of what it missed) loads every membership again.
func TestReloadsWhenFarBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := db.New(pool)
	s := orgs.NewStore(pool, nil, nil)
	u := newUsers(t, pool, 2)
	org := mustCreate(t, s, u[0], "pruned").ID
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	m := orgs.NewMemberships(func() time.Time { return time.Unix(0, now.Load()) })
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMember(ctx, org, u[1], []string{orgs.Viewer}); err != nil {
		t.Fatal(err)
	}
	// The change's log row is gone, as if pruned while the copy was behind.
	if _, err := pool.Exec(ctx, "DELETE FROM org_changes"); err != nil {
		t.Fatal(err)
	}
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.RolesIn(u[1], org); ok {
		t.Fatal("the change was seen without its log row")
	}
	now.Add(int64(orgs.Retention/2 + time.Second))
	if lag := m.Lag(); lag != orgs.Retention/2+time.Second {
		t.Errorf("Lag = %v, want %v", lag, orgs.Retention/2+time.Second)
	}
	if err := m.CatchUp(ctx, q); err != nil {
		t.Fatal(err)
	}
	if roles, ok := m.RolesIn(u[1], org); !ok || !cmp.Equal(roles, []string{orgs.Viewer}) {
		t.Errorf("after the reload: %v, %v", roles, ok)
	}
	if lag := m.Lag(); lag != 0 {
		t.Errorf("Lag after the reload = %v, want 0", lag)
	}
}

// Two replicas, each following the log on its own pool: a change made
// through one is seen by the other within a second, as its LISTEN
// connection hears of it.
func TestChangesReachTheOtherReplica(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := testdb.URL(t)
	poolA, poolB := testdb.Open(t, url), testdb.Open(t, url)
	a, b := orgs.NewMemberships(nil), orgs.NewMemberships(nil)
	follow := func(m *orgs.Memberships, pool *pgxpool.Pool) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Follow(ctx, orgs.Feed{Pool: pool})
		}()
		return done
	}
	doneA, doneB := follow(a, poolA), follow(b, poolB)
	defer func() { cancel(); <-doneA; <-doneB }()
	for _, m := range []*orgs.Memberships{a, b} {
		select {
		case <-m.Up():
		case <-time.After(10 * time.Second):
			t.Fatalf("the feed is not up: %v", m.Err())
		}
	}
	s := orgs.NewStore(poolA, a, nil)
	u := newUsers(t, poolA, 2)
	org := mustCreate(t, s, u[0], "replicated").ID

	// seenWithin waits until b holds want for the member (nil: not a
	// member), and returns how long that took since the change began.
	seenWithin := func(round int, user int64, want []string, since time.Time, limit time.Duration) time.Duration {
		t.Helper()
		for {
			roles, ok := b.RolesIn(user, org)
			if ok == (want != nil) && slices.Equal(roles, want) {
				return time.Since(since)
			}
			if time.Since(since) > limit {
				t.Fatalf("round %d: the other replica holds %v %v after %v, want %v", round, roles, ok, limit, want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	seenWithin(0, u[0], []string{orgs.Owner}, time.Now(), time.Second)
	var delays []time.Duration
	for n := range 50 {
		roles := []string{orgs.Viewer}
		if n%2 == 0 {
			roles = []string{orgs.Editor}
		}
		since := time.Now()
		if _, err := s.SetMember(ctx, org, u[1], roles); err != nil {
			t.Fatalf("round %d: %v", n, err)
		}
		delays = append(delays, seenWithin(n, u[1], roles, since, time.Second))
	}
	since := time.Now()
	if err := s.RemoveMember(ctx, org, u[1]); err != nil {
		t.Fatal(err)
	}
	delays = append(delays, seenWithin(50, u[1], nil, since, time.Second))

	slices.Sort(delays)
	p := func(q float64) time.Duration { return delays[int(q*float64(len(delays)-1))] }
	t.Logf("membership changes reached the other replica over %d changes: p50 %v, p99 %v, max %v (its Lag %v)",
		len(delays), p(0.5), p(0.99), delays[len(delays)-1], b.Lag())
	if err := b.Err(); err != nil {
		t.Errorf("the other replica's feed: %v", err)
	}
}
