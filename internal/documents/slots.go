package documents

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Slots bounds how many PDF operations run at once on this replica: at most
// PerUser for any one user, and at most Total in all. It keeps its counts in
// memory, so each replica bounds its own work. Taking a slot never waits:
// a caller over a bound is told to come back later instead of queueing,
// so that a burst costs neither memory nor goroutines.
//
// Slots is safe for concurrent use.
type Slots struct {
	perUser, total int

	mu      sync.Mutex
	running int
	byUser  map[int64]int
}

// RetryAfter is how long Take tells a refused caller to wait. PDF
// operations usually take well under a second; the client's retry is a cheap
// refusal if the slot is still taken.
const RetryAfter = time.Second

// NewSlots returns Slots allowing perUser operations per user (at least 1)
// and total in all; a total below 1 means one per CPU, since PDF work is
// CPU-bound.
func NewSlots(perUser, total int) *Slots {
	if total < 1 {
		total = runtime.GOMAXPROCS(0)
	}
	return &Slots{perUser: max(perUser, 1), total: total, byUser: map[int64]int{}}
}

// BusyError is the error of Take: Err is ErrUserBusy or ErrBusy, and
// RetryAfter the time to wait before trying again.
type BusyError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.RetryAfter)
}

func (e *BusyError) Unwrap() error { return e.Err }

// Take takes a slot for user and returns the function that frees it; calling
// release more than once frees it once. If user already holds PerUser slots
// it returns a *BusyError wrapping ErrUserBusy; if the replica runs Total
// operations, one wrapping ErrBusy. The user's bound is checked first: a
// user over it is told so even on a busy replica.
func (s *Slots) Take(user int64) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byUser[user] >= s.perUser:
		return nil, &BusyError{Err: ErrUserBusy, RetryAfter: RetryAfter}
	case s.running >= s.total:
		return nil, &BusyError{Err: ErrBusy, RetryAfter: RetryAfter}
	}
	s.running++
	s.byUser[user]++
	var once sync.Once
	return func() { once.Do(func() { s.free(user) }) }, nil
}

func (s *Slots) free(user int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	if s.byUser[user]--; s.byUser[user] == 0 {
		delete(s.byUser, user) // the map holds only users with work running
	}
}
