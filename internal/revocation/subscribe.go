package revocation

import (
	"errors"
	"maps"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/fanout"
)

// Why a Subscription ends, as its Err reports.
var (
	// ErrSlow: the subscriber did not take what was published fast enough.
	ErrSlow = fanout.ErrSlow
	// ErrFeedDown: the List stopped following the log.
	ErrFeedDown = errors.New("revocation: the feed is down")
	// ErrClosed: the subscriber closed it, or the List was shut.
	ErrClosed = fanout.ErrClosed
)

// appliedKeep is how long a seq applied is remembered, so that the log's
// re-reads (the rows of its last 30 seconds come again on every catch-up)
// are not published twice: longer than that overlap.
const appliedKeep = 2 * time.Minute

// Subscription receives the rows of the log its List applies from the
// moment of Subscribe on, each once, in the order they are applied (which
// is not always seq order: a transaction may commit a lower seq after a
// higher one). It is cut off rather than allowed to hold the List up.
type Subscription = fanout.Subscription[[]db.ListRevocationsRow]

// Subscribe returns a Subscription whose buffer holds up to buffer batches
// of rows (at least 1); one that falls further behind is cut off with
// ErrSlow, and every one when the feed goes down (ErrFeedDown). The caller
// must Close it.
func (l *List) Subscribe(buffer int) *Subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	var refusal error
	if l.Err() != nil {
		refusal = ErrFeedDown
	}
	return l.subs.Subscribe(buffer, refusal)
}

// EndSubscriptions ends every subscription with ErrClosed, and those made
// later at once: the replica is shutting down. The List itself goes on.
func (l *List) EndSubscriptions() { l.subs.End() }

// publish hands the rows not applied before, and still of use at now, to
// every subscriber, cutting off those whose buffer is full; the caller
// holds l.mu. It remembers what it has seen for appliedKeep.
func (l *List) publish(rows []db.ListRevocationsRow, now time.Time) {
	var fresh []db.ListRevocationsRow
	for _, r := range rows {
		if _, seen := l.applied[r.Seq]; seen {
			continue
		}
		l.applied[r.Seq] = now
		if r.ExpiresAt.Time.After(now) {
			fresh = append(fresh, r)
		}
	}
	if now.Sub(l.appliedPruned) > appliedKeep/4 {
		maps.DeleteFunc(l.applied, func(_ int64, at time.Time) bool { return now.Sub(at) > appliedKeep })
		l.appliedPruned = now
	}
	if len(fresh) == 0 {
		return
	}
	l.subs.Publish(fresh)
}
