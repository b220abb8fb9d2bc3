package revocation

import (
	"errors"
	"maps"
	"time"

	"github.com/rolegate/rolegate/gen/db"
)

// Why a Subscription ends, as its Err reports.
var (
	// ErrSlow: the subscriber did not take what was published fast enough.
	ErrSlow = errors.New("revocation: the subscriber fell behind")
	// ErrFeedDown: the List stopped following the log.
	ErrFeedDown = errors.New("revocation: the feed is down")
	// ErrClosed: the subscriber closed it, or the List was shut.
	ErrClosed = errors.New("revocation: the subscription was closed")
)

// appliedKeep is how long a seq applied is remembered, so that the log's
// re-reads (the rows of its last 30 seconds come again on every catch-up)
// are not published twice: longer than that overlap.
const appliedKeep = 2 * time.Minute

// Subscription receives the rows of the log its List applies from the
// moment of Subscribe on, each once, in the order they are applied (which
// is not always seq order: a transaction may commit a lower seq after a
// higher one). It is cut off rather than allowed to hold the List up.
type Subscription struct {
	l    *List
	rows chan []db.ListRevocationsRow
	done chan struct{}
	err  error // set before done is closed
}

// Subscribe returns a Subscription whose buffer holds up to buffer batches
// of rows (at least 1); one that falls further behind is cut off with
// ErrSlow. The caller must Close it.
func (l *List) Subscribe(buffer int) *Subscription {
	s := &Subscription{l: l, rows: make(chan []db.ListRevocationsRow, max(buffer, 1)), done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs[s] = struct{}{}
	switch {
	case l.ended:
		l.cut(s, ErrClosed)
	case l.Err() != nil:
		l.cut(s, ErrFeedDown)
	}
	return s
}

// Rows delivers the batches of rows applied. It is never closed: select
// on Done too.
func (s *Subscription) Rows() <-chan []db.ListRevocationsRow { return s.rows }

// Done is closed when the subscription ends; Err says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended (ErrSlow, ErrFeedDown or
// ErrClosed), or nil while it runs.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription; it may be called more than once.
func (s *Subscription) Close() {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.l.cut(s, ErrClosed)
}

// cut ends s with err; the caller holds l.mu.
func (l *List) cut(s *Subscription, err error) {
	if _, ok := l.subs[s]; !ok {
		return
	}
	delete(l.subs, s)
	s.err = err
	close(s.done)
}

// cutAll ends every subscription with err; the caller holds l.mu.
func (l *List) cutAll(err error) {
	for s := range l.subs {
		l.cut(s, err)
	}
}

// EndSubscriptions ends every subscription with ErrClosed, and those made
// later at once: the replica is shutting down. The List itself goes on.
func (l *List) EndSubscriptions() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	l.cutAll(ErrClosed)
}

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
	for s := range l.subs {
		select {
		case s.rows <- fresh:
		default:
			l.cut(s, ErrSlow)
		}
	}
}
