package keys_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
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

// replica is one replica's store of access keys on a shared database and
// clock.
func replica(t *testing.T, pool *pgxpool.Pool, now *time.Time, master string) *keys.Store {
	t.Helper()
	return store(t, pool, now, master, keys.Config{Alg: token.EdDSA})
}

// store is a store of cfg's purpose and algorithm on a shared database
// and clock.
func store(t *testing.T, pool *pgxpool.Pool, now *time.Time, master string, cfg keys.Config) *keys.Store {
	t.Helper()
	cfg.MasterKey, cfg.Rotation, cfg.PublishAhead, cfg.Keep = []byte(master), rotation, ahead, keep
	cfg.Now = func() time.Time { return *now }
	s, err := keys.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// open opens a pool on a fresh database.
func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
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

// Access and id keys are key sets of their own: each purpose's first key,
// rotations and deletions leave the other's keys as they were, and each
// lists only its own, with its purpose.
func TestPurposesAreApart(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const master = "a master key of at least 32 bytes!"
	access := replica(t, pool, &now, master)
	id := store(t, pool, &now, master, keys.Config{Purpose: keys.ID, Alg: token.RS256})
	if access.Purpose() != keys.Access || id.Purpose() != keys.ID {
		t.Fatalf("purposes %q and %q", access.Purpose(), id.Purpose())
	}

	sync := func(s *keys.Store) (token.KeySet, []keys.State) {
		t.Helper()
		ks, states, err := s.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ks, states
	}
	accessKeys, accessStates := sync(access)
	idKeys, idStates := sync(id)
	if accessKeys.Signing.Alg != token.EdDSA || idKeys.Signing.Alg != token.RS256 || len(accessKeys.Verify) != 1 || len(idKeys.Verify) != 1 {
		t.Fatalf("access keys %v, id keys %v: want one of each, EdDSA and RS256", kids(accessKeys), kids(idKeys))
	}
	for _, st := range [][]keys.State{accessStates, idStates} {
		if len(st) != 1 || st[0].Status != "signing" {
			t.Fatalf("states %+v: want one signing key of each purpose", st)
		}
	}
	if accessStates[0].Purpose != keys.Access || idStates[0].Purpose != keys.ID {
		t.Errorf("purposes in the states: %q, %q", accessStates[0].Purpose, idStates[0].Purpose)
	}
	// Both purposes' keys are in the one table, told apart by purpose.
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM signing_keys WHERE purpose = 'id' AND alg = 'RS256' AND kid = $1", idKeys.Signing.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the id key's row: %d, %v", n, err)
	}

	// Rotating the id keys leaves the access keys untouched, and the other
	// way round.
	_, rotated, err := id.Rotate(ctx)
	if err != nil || len(rotated) != 2 || rotated[0].Status != "published" || rotated[0].Purpose != keys.ID {
		t.Fatalf("Rotate the id keys = %+v, %v", rotated, err)
	}
	if ks, st := sync(access); !slices.Equal(kids(ks), kids(accessKeys)) || len(st) != 1 {
		t.Errorf("after the id keys' rotation the access keys are %v, want %v", kids(ks), kids(accessKeys))
	}
	if _, _, err := access.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, st := sync(id); len(st) != 2 || st[1].Kid != idKeys.Signing.ID || st[1].Status != "signing" {
		t.Errorf("after the access keys' rotation the id keys are %+v", st)
	}

	// The id keys' retired key leaves after Keep; the access keys' own
	// schedule is theirs.
	now = now.Add(ahead)
	idNow, _ := sync(id)
	now = now.Add(keep)
	idLater, idStates := sync(id)
	if len(idLater.Verify) != 1 || idLater.Signing.ID == idKeys.Signing.ID || idNow.Signing.ID != idLater.Signing.ID {
		t.Errorf("id keys after Keep: %v (%+v)", kids(idLater), idStates)
	}
	accessLater, _ := sync(access)
	if len(accessLater.Verify) != 1 || accessLater.Signing.ID == accessKeys.Signing.ID {
		t.Errorf("access keys after Keep: %v", kids(accessLater))
	}
	for _, k := range accessLater.Verify {
		if slices.Contains(kids(idLater), k.ID) {
			t.Errorf("key %s is of both purposes", k.ID)
		}
	}
}

// One purpose's rotation never waits on the other's: each takes a lock of
// its own.
func TestPurposesLockApart(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const master = "a master key of at least 32 bytes!"
	id := store(t, pool, &now, master, keys.Config{Purpose: keys.ID, Alg: token.ES256})
	access := replica(t, pool, &now, master)

	// Another replica holds the access keys' lock.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := db.New(tx).LockSigningKeys(ctx, keys.Access); err != nil {
		t.Fatal(err)
	}
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := id.Sync(quick); err != nil {
		t.Fatalf("the id keys wait on the access keys' lock: %v", err)
	}
	blocked, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, _, err := access.Sync(blocked); err == nil {
		t.Error("the access keys synced while another replica held their lock")
	}
}

// A store refuses a purpose it does not know, and algorithms its purpose
// does not sign with.
func TestNewRefuses(t *testing.T) {
	pool := open(t)
	master := []byte("a master key of at least 32 bytes!")
	for _, tt := range []struct {
		purpose, alg string
		ok           bool
	}{
		{"", token.EdDSA, true},
		{keys.Access, token.ES256, true},
		{keys.Access, token.RS256, false},
		{keys.Access, token.HS256, false},
		{keys.ID, token.RS256, true},
		{keys.ID, token.ES256, true},
		{keys.ID, token.EdDSA, true},
		{keys.ID, token.HS256, false},
		{"refresh", token.EdDSA, false},
	} {
		_, err := keys.New(pool, keys.Config{Purpose: tt.purpose, Alg: tt.alg, MasterKey: master})
		if (err == nil) != tt.ok {
			t.Errorf("New(%q, %s) = %v, want ok %v", tt.purpose, tt.alg, err, tt.ok)
		}
	}
}
