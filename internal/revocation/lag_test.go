package revocation_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Lag is the time since the last catch-up that read the log, or since New
// before any did; a failed catch-up leaves it growing.
func TestLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	l := revocation.New(func() time.Time { return time.Unix(0, now.Load()) })
	advance := func(d time.Duration) { now.Add(int64(d)) }

	advance(2 * time.Second)
	if lag, at := l.Lag(), l.CaughtUp(); lag != 2*time.Second || !at.IsZero() {
		t.Fatalf("before any catch-up: Lag %v, CaughtUp %v; want 2s since New, zero", lag, at)
	}
	q := db.New(testdb.New(t))
	if err := l.CatchUp(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	caught := t0.Add(2 * time.Second)
	if lag, at := l.Lag(), l.CaughtUp(); lag != 0 || !at.Equal(caught) {
		t.Fatalf("just caught up: Lag %v, CaughtUp %v; want 0, %v", lag, at, caught)
	}
	advance(3 * time.Second)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.CatchUp(cancelled, q); err == nil {
		t.Fatal("CatchUp on a cancelled context succeeded")
	}
	if lag, at := l.Lag(), l.CaughtUp(); lag != 3*time.Second || !at.Equal(caught) {
		t.Fatalf("after a failed catch-up: Lag %v, CaughtUp %v; want 3s, %v", lag, at, caught)
	}
}
