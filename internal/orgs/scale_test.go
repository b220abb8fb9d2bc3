package orgs_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/orgs/orgstest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// loadMeasured loads every membership into a new copy and returns it with
// the heap it takes per membership and the time the load took.
func loadMeasured(tb testing.TB, pool *pgxpool.Pool, n int) (*orgs.Memberships, float64, time.Duration) {
	tb.Helper()
	before := orgstest.Heap()
	m := orgs.NewMemberships(nil)
	started := time.Now()
	if err := m.CatchUp(context.Background(), db.New(pool)); err != nil {
		tb.Fatal(err)
	}
	took := time.Since(started)
	after := orgstest.Heap()
	if m.Len() != n {
		tb.Fatalf("loaded %d memberships, want %d", m.Len(), n)
	}
	return m, (float64(after) - float64(before)) / float64(n), took
}

// The memory a replica's copy takes, measured on a load from the database
// at a scale `make test` runs; BenchmarkLoad1M measures the 1M.
func TestMemoryPerMembership(t *testing.T) {
	pool := testdb.New(t)
	n := orgstest.Seed(t, pool, 10_000, 5_000, 5)
	m, perMembership, took := loadMeasured(t, pool, n)
	t.Logf("%d memberships: %.0f bytes of heap each (%.1f MB in all), loaded in %v", n, perMembership, perMembership*float64(n)/1e6, took.Round(time.Millisecond))
	// A generous ceiling, above the map's growth steps at this size: it
	// catches a copy several times what it should take. TestOrgScale
	// bounds the 1M figure more closely (100 bytes, where a copy that does
	// not share its sets of roles takes about 121).
	if perMembership > 200 {
		t.Errorf("%.0f bytes per membership, want at most 200", perMembership)
	}
	if roles, ok := m.RolesIn(firstScaleUser(t, pool), firstScaleOrg(t, pool)); !ok || len(roles) == 0 {
		t.Errorf("the first account in the first organization: %v, %v", roles, ok)
	}
	runtime.KeepAlive(m)
}

func firstScaleUser(tb testing.TB, pool *pgxpool.Pool) int64 {
	tb.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), "SELECT min(id) FROM users WHERE email LIKE 'scale%'").Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

func firstScaleOrg(tb testing.TB, pool *pgxpool.Pool) int64 {
	tb.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), "SELECT min(id) FROM orgs WHERE slug LIKE 'scale-%'").Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return id
}

// BenchmarkLoad1M is the scale: 100k organizations and 1M
// memberships (100k accounts in 10 each), loaded from the database; it
// reports the heap per membership and the time a full load takes. Run it
// alone, once: go test -run '^$' -bench Load1M -benchtime 1x ./internal/orgs/
func BenchmarkLoad1M(b *testing.B) {
	pool := testdb.New(b)
	n := orgstest.Seed(b, pool, 100_000, 100_000, 10)
	var perMembership float64
	for b.Loop() {
		var m *orgs.Memberships
		m, perMembership, _ = loadMeasured(b, pool, n)
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perMembership, "B/membership")
	b.ReportMetric(perMembership*float64(n)/1e6, "MB")
	b.Logf("%d memberships: %.0f bytes of heap each, %.1f MB in all", n, perMembership, perMembership*float64(n)/1e6)
}

// BenchmarkRolesIn is the gate's per-request read, in a copy of 1M
// memberships: a hit, a miss (not a member, as a 404 is), and hits from
// every core at once.
func BenchmarkRolesIn(b *testing.B) {
	const users, perUser, orgCount = 100_000, 10, 100_000
	m := orgs.NewMemberships(nil)
	ms := make([]orgs.Membership, 0, users*perUser)
	sets := [][]string{{orgs.Owner}, {orgs.Editor, orgs.Viewer}, {orgs.Viewer}}
	for u := range int64(users) {
		for k := range int64(perUser) {
			ms = append(ms, orgs.Membership{User: u + 1, Org: (u*perUser+k)%orgCount + 1, Roles: sets[(u+k)%3]})
		}
	}
	m.Set(ms...)
	keys := make([]orgs.Membership, 4096)
	for i := range keys {
		keys[i] = ms[rand.IntN(len(ms))]
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k := keys[i%len(keys)]
			if _, ok := m.RolesIn(k.User, k.Org); !ok {
				b.Fatal("a member was missed")
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k := keys[i%len(keys)]
			if _, ok := m.RolesIn(k.User+users, k.Org); ok {
				b.Fatal("a non-member was found")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(keys))
			for pb.Next() {
				k := keys[i%len(keys)]
				m.RolesIn(k.User, k.Org)
				i++
			}
		})
	})
}
