// Package throttle enforces the failure budgets an operation declares in
// the spec with x-rate-limit, for example on POST /token:
//
//	x-rate-limit:
//	  per-address: {failures: 50, window: 15m}
//	  per-account: {failures: 10, window: 15m}
//
// A failure is an answer of 400, 401 or 403. Past a budget the key (the
// client's address, or the account the request names) is refused with 429
// until a delay has passed, after which one attempt is let through again;
// each further failure doubles the delay (1 s, 2 s, 4 s, …), up to
// MaxDelay, so an attacker slows an account down but never locks it out
// for good, and a success resets the account's count. The counts live in
// PostgreSQL, so every replica shares one budget. Besides, Enter lets one
// address hash only a few passwords at once on a replica (InFlight), so
// that a flood from one address never fills the password hashing pool.
package throttle

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
)

// Ext is the operation extension that declares budgets.
const Ext = "x-rate-limit"

// Budget is at most Failures failures in Window.
type Budget struct {
	Failures int
	Window   time.Duration
}

// Rule is an operation's x-rate-limit: a budget per client address, per
// account, or both.
type Rule struct {
	PerAddress, PerAccount *Budget
}

// Parse reads an x-rate-limit extension's value.
func Parse(ext any) (*Rule, error) {
	m, ok := ext.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s must be an object", Ext)
	}
	r := &Rule{}
	for k, v := range m {
		b, err := parseBudget(v)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", Ext, k, err)
		}
		switch k {
		case "per-address":
			r.PerAddress = b
		case "per-account":
			r.PerAccount = b
		default:
			return nil, fmt.Errorf("%s: unknown budget %q (want per-address or per-account)", Ext, k)
		}
	}
	if r.PerAddress == nil && r.PerAccount == nil {
		return nil, fmt.Errorf("%s declares no budget", Ext)
	}
	return r, nil
}

func parseBudget(v any) (*Budget, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 2 {
		return nil, fmt.Errorf("want {failures: N, window: D}")
	}
	n, ok := m["failures"].(float64)
	w, ok2 := m["window"].(string)
	if !ok || !ok2 || n < 1 || n > 1e6 || n != math.Trunc(n) {
		return nil, fmt.Errorf("want {failures: N, window: D} with N a positive whole number")
	}
	d, err := time.ParseDuration(w)
	if err != nil || d <= 0 || d > MaxWindow {
		return nil, fmt.Errorf("window %q is not a positive duration of at most %v, such as 15m", w, MaxWindow)
	}
	return &Budget{Failures: int(n), Window: d}, nil
}

// Describe states r in words, for the served spec.
func (r *Rule) Describe() string {
	s := "at most"
	if b := r.PerAccount; b != nil {
		s += fmt.Sprintf(" %d failures per account", b.Failures) + " per " + b.Window.String()
	}
	if b := r.PerAddress; b != nil {
		if r.PerAccount != nil {
			s += " and"
		}
		s += fmt.Sprintf(" %d failures per client address", b.Failures) + " per " + b.Window.String()
	}
	return s + "; past that 429 with Retry-After, a delay that doubles with each further failure (up to 15m), and a success resets the account's count."
}

// MaxWindow bounds a budget's window: counts idle for longer are pruned.
const MaxWindow = time.Hour

// MaxDelay bounds the delay of a key past its budget.
const MaxDelay = 15 * time.Minute

// InFlight is how many passwords one address may have hashed at once on
// one replica; more wait for Retry-After rather than for a hashing worker.
const InFlight = 2

// Limiter keeps the budgets. It is safe for concurrent use.
type Limiter struct {
	pool *pgxpool.Pool
	now  func() time.Time

	mu      sync.Mutex
	running map[string]int
}

// New returns a Limiter over pool on the clock now (nil means time.Now).
func New(pool *pgxpool.Pool, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{pool: pool, now: now, running: map[string]int{}}
}

// Blocked returns how long the longest block of keys still runs; zero when
// none is blocked.
func (l *Limiter) Blocked(ctx context.Context, keys []string) (time.Duration, error) {
	until, err := db.New(l.pool).BlockedUntil(ctx, keys)
	if err != nil || !until.Valid {
		return 0, err
	}
	return max(0, until.Time.Sub(l.now())), nil
}

// Failed counts a failure of key against b.
func (l *Limiter) Failed(ctx context.Context, key string, b Budget) error {
	_, err := db.New(l.pool).RecordFailure(ctx, db.RecordFailureParams{
		Key: key, Now: pgtype.Timestamptz{Time: l.now(), Valid: true}, MaxFailures: int32(b.Failures),
		WindowLength: interval(b.Window), MaxDelay: interval(MaxDelay),
	})
	return err
}

// Succeeded resets key's count.
func (l *Limiter) Succeeded(ctx context.Context, key string) error {
	return db.New(l.pool).ResetRateLimit(ctx, key)
}

// Enter takes one of key's InFlight places; ok is false when they are all
// taken. release frees the place.
func (l *Limiter) Enter(key string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[key] >= InFlight {
		return nil, false
	}
	l.running[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.running[key]--; l.running[key] == 0 {
				delete(l.running, key)
			}
		})
	}, true
}

// Prune deletes the counts of keys whose window and block are both over,
// the longest window being window.
func (l *Limiter) Prune(ctx context.Context, window time.Duration) error {
	now := l.now()
	_, err := db.New(l.pool).DeleteOldRateLimits(ctx, db.DeleteOldRateLimitsParams{
		Before: pgtype.Timestamptz{Time: now.Add(-window), Valid: true}, Now: pgtype.Timestamptz{Time: now, Valid: true},
	})
	return err
}

func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
}
