package keys_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/internal/keys"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/token"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const (
	rotation = 24 * time.Hour
	ahead    = 6 * time.Minute
	keep     = 16 * time.Minute
)

// replica is one replica's key store on a shared database and clock.
func replica(t *testing.T, pool *pgxpool.Pool, now *time.Time, master string) *keys.Store {
	t.Helper()
	s, err := keys.New(pool, keys.Config{Alg: token.EdDSA, MasterKey: []byte(master), Rotation: rotation,
		PublishAhead: ahead, Keep: keep, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kids(ks token.KeySet) []string {
	var out []string
	for _, k := range ks.Verify {
		out = append(out, k.ID)
	}
	slices.Sort(out)
	return out
}

// A rotation publishes the new key before it signs; the old key's tokens
// verify until they expire, and then the old key leaves the set. Two
// replicas sign with the same key all along.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const master = "a master key of at least 32 bytes!"
	a, b := replica(t, pool, &now, master), replica(t, pool, &now, master)

	sync := func(s *keys.Store) (token.KeySet, []keys.State) {
		t.Helper()
		ks, states, err := s.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ks, states
	}
	first, _ := sync(a)
	if again, _ := sync(b); again.Signing.ID != first.Signing.ID || len(again.Verify) != 1 {
		t.Fatalf("the second replica signs with %s, the first with %s", again.Signing.ID, first.Signing.ID)
	}
	m, err := token.New(token.Config{Keys: &first, Issuer: "i", Audience: "a", TTL: 15 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	// A day later the newest key is due: a new one is published, not used.
	now = now.Add(rotation)
	old, _, _ := m.Issue(token.Subject{UserID: 1}) // signed by the first key
	ks, states := sync(b)
	if ks.Signing.ID != first.Signing.ID || len(ks.Verify) != 2 {
		t.Fatalf("right after the rotation: signing %s with %d keys; want the old key, both published", ks.Signing.ID, len(ks.Verify))
	}
	if states[0].Status != "published" || states[1].Status != "signing" {
		t.Errorf("states %+v", states)
	}
	next := states[0].Kid
	if ka, _ := sync(a); ka.Signing.ID != first.Signing.ID || !slices.Equal(kids(ka), kids(ks)) {
		t.Error("the replicas disagree after the rotation")
	}

	// Once PublishAhead has passed, both sign with the new key; the old one
	// still verifies.
	now = now.Add(ahead)
	ka, _ := sync(a)
	kb, states := sync(b)
	if ka.Signing.ID != next || kb.Signing.ID != next {
		t.Fatalf("signing %s and %s, want %s on both", ka.Signing.ID, kb.Signing.ID, next)
	}
	if states[1].Status != "retired" || !states[1].UnpublishAt.Equal(now.Add(keep)) {
		t.Errorf("the old key: %+v", states[1])
	}
	if err := m.SetKeys(kb); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(old); err != nil {
		t.Errorf("a token of the old key while it is published: %v", err)
	}

	// After Keep the old key is gone.
	now = now.Add(keep)
	ks, _ = sync(a)
	if len(ks.Verify) != 1 || ks.Verify[0].ID != next {
		t.Errorf("after Keep: %v published, want only %s", kids(ks), next)
	}

	// Another master key cannot open the keys.
	if _, _, err := replica(t, pool, &now, "another master key of 32 bytes!!").Sync(ctx); err == nil {
		t.Error("a replica with another master key could sign")
	}
	// A forced rotation publishes a new key at once and it signs later.
	if _, states, err := a.Rotate(ctx); err != nil || len(states) != 2 || states[0].Status != "published" {
		t.Errorf("Rotate = %+v, %v", states, err)
	}
}
