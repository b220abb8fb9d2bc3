package password

import (
	"context"
	"testing"
)

// The accessors the metrics read: capacity, and what is running and
// waiting at the moment.
func TestPoolStats(t *testing.T) {
	pool := NewPool(1, 3, fast)
	defer pool.Close()
	if pool.Workers() != 1 || pool.QueueSize() != 3 || pool.Busy() != 0 || pool.Queued() != 0 {
		t.Fatalf("idle: workers %d, queue size %d, busy %d, queued %d; want 1, 3, 0, 0",
			pool.Workers(), pool.QueueSize(), pool.Busy(), pool.Queued())
	}
	release, blocked := blocker(t, pool)
	defer release()
	queued := make(chan error, 1)
	go func() { _, err := pool.Hash(context.Background(), "queued"); queued <- err }()
	waitQueued(t, pool, 1)
	if pool.Busy() != 1 || pool.Queued() != 1 {
		t.Fatalf("one running, one waiting: busy %d, queued %d", pool.Busy(), pool.Queued())
	}
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err != nil {
		t.Fatal(err)
	}
	// A worker counts itself idle before it tells the job's caller.
	if pool.Busy() != 0 || pool.Queued() != 0 {
		t.Fatalf("done: busy %d, queued %d; want 0, 0", pool.Busy(), pool.Queued())
	}
}
