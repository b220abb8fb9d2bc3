// Package throttle enforces the failure budgets an operation declares in
// the spec with x-rate-limit, for example on POST /token:
//
//	x-rate-limit:
//	  per-address: {failures: 50, window: 15m}
//	  per-account: {failures: 10, window: 15m}
//
// A failure is an answer of 400, 401 or 403. A client address counts by its
// network (Network): an IPv4 address by itself, an IPv6 address by its /64
// (configurable), since whoever holds one address of a /64 usually holds
// them all. An account's budget is kept per account and client network, so
// that failures from elsewhere never hold its owner back; the budget per
// client network, across accounts, bounds what one network may try in all.
//
// Every attempt is counted as a failure before it is made (Reserve), in one
// statement per key that also refuses a key that is blocked, so that
// concurrent attempts cannot pass a budget; when it was no failure, Settle
// gives it back. Past a budget the key is refused with 429 until a delay
// has passed, after which one attempt is let through again; each further
// failure doubles the delay (1 s, 2 s, 4 s, …), up to MaxDelay, so an
// attacker slows an account down but never locks it out for good, and a
// success resets the account's count. The counts live in PostgreSQL, so
// every replica shares one budget. Besides, Enter lets one client network
// hash only a few passwords at once on a replica (InFlight), so that a
// flood from one network never fills the password hashing pool.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
)

// Ext is the operation extension that declares budgets.
const Ext = "x-rate-limit"

// Budget is at most Failures failures in Window; or, when Requests is
// set, at most that many requests, whatever their answers ({requests: N,
// window: D}): for operations whose every call costs something, such as
// one that sends a mail.
type Budget struct {
	Failures int
	Window   time.Duration
	Requests bool
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
	requests := false
	if !ok {
		n, ok = m["requests"].(float64)
		requests = ok
	}
	w, ok2 := m["window"].(string)
	if !ok || !ok2 || n < 1 || n > 1e6 || n != math.Trunc(n) {
		return nil, fmt.Errorf("want {failures: N, window: D} or {requests: N, window: D} with N a positive whole number")
	}
	d, err := time.ParseDuration(w)
	if err != nil || d <= 0 || d > MaxWindow {
		return nil, fmt.Errorf("window %q is not a positive duration of at most %v, such as 15m", w, MaxWindow)
	}
	return &Budget{Failures: int(n), Window: d, Requests: requests}, nil
}

// Describe states r in words, for the served spec; an IPv6 client address
// counts by its /ipv6Prefix network.
func (r *Rule) Describe(ipv6Prefix int) string {
	s := "at most"
	if b := r.PerAccount; b != nil {
		s += fmt.Sprintf(" %d %s per account from one client address per %s", b.Failures, b.what(), short(b.Window))
	}
	if b := r.PerAddress; b != nil {
		if r.PerAccount != nil {
			s += " and"
		}
		s += fmt.Sprintf(" %d %s per client address per %s", b.Failures, b.what(), short(b.Window))
	}
	if (r.PerAccount == nil || r.PerAccount.Requests) && (r.PerAddress == nil || r.PerAddress.Requests) {
		return s + fmt.Sprintf(" (an IPv6 client address counts by its /%d): every request counts, whatever its answer, "+
			"and past a budget 429 with Retry-After until its window ends.", ipv6Prefix)
	}
	return s + fmt.Sprintf(" (an IPv6 client address counts by its /%d). An attempt counts as a failure from its start "+
		"until it is answered otherwise, so concurrent attempts cannot pass a budget. Past a budget 429 with Retry-After, "+
		"a delay that doubles with each further failure (up to %s), after which one attempt at a time is let through; "+
		"a success resets the account's count from that address.", ipv6Prefix, short(MaxDelay))
}

// what is what b counts.
func (b *Budget) what() string {
	if b.Requests {
		return "requests"
	}
	return "failures"
}

// short writes d in whole hours or minutes when it is some: 1h, 15m.
func short(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// MaxWindow bounds a budget's window: counts idle for longer are pruned.
const MaxWindow = time.Hour

// MaxDelay bounds the delay of a key past its budget.
const MaxDelay = 15 * time.Minute

// InFlight is how many passwords one client network may have hashed at
// once on one replica; more wait for Retry-After rather than for a
// hashing worker.
const InFlight = 2

// DefaultIPv6Prefix is the length of the IPv6 network that counts as one
// client address unless configured otherwise: a /64 is the smallest
// network an ISP or a cloud hands out.
const DefaultIPv6Prefix = 64

// Network returns the network the client address addr counts in: an IPv4
// address (an IPv4-mapped IPv6 one as IPv4) by itself, an IPv6 address by
// its /ipv6Prefix, such as "2001:db8:1:2::/64"; anything that is no IP
// address as it is.
func Network(addr string, ipv6Prefix int) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if ip = ip.Unmap(); ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(ipv6Prefix)
	if err != nil {
		return ip.WithZone("").String()
	}
	return p.String()
}

// Key is a budget an attempt counts against.
type Key struct {
	// Name names what is counted, such as the client network of an
	// operation; at most 400 bytes of valid UTF-8 without NUL.
	Name   string
	Budget Budget
	// Resets marks an account's key, whose count a success resets; any
	// other key (a client network's) only gets the attempt back.
	Resets bool
}

// Reservation is an attempt counted in advance by Reserve, to be ended
// by Settle.
type Reservation struct {
	keys []Key
	rows []db.ReserveAttemptRow // what each key's reservation left
}

// Limiter keeps the budgets. It is safe for concurrent use.
type Limiter struct {
	pool       *pgxpool.Pool
	now        func() time.Time
	ipv6Prefix int

	mu      sync.Mutex
	running map[string]int
}

// New returns a Limiter over pool on the clock now (nil means time.Now),
// counting IPv6 client addresses by their /ipv6Prefix (0 means
// DefaultIPv6Prefix).
func New(pool *pgxpool.Pool, now func() time.Time, ipv6Prefix int) *Limiter {
	if now == nil {
		now = time.Now
	}
	if ipv6Prefix == 0 {
		ipv6Prefix = DefaultIPv6Prefix
	}
	return &Limiter{pool: pool, now: now, ipv6Prefix: ipv6Prefix, running: map[string]int{}}
}

// Network returns the network the client address addr counts in (see
// Network).
func (l *Limiter) Network(addr string) string { return Network(addr, l.ipv6Prefix) }

// errRefused rolls back the reservations of an attempt one of whose keys
// is blocked.
var errRefused = errors.New("throttle: a key is blocked")

// Reserve counts an attempt against every one of keys at once, before it
// is made, as a failure: the attempt that reaches a key's budget blocks
// the key, so that those after it are refused until Settle or the
// block's end. When any key is blocked, no key is counted and wait is
// how long the longest block still runs.
func (l *Limiter) Reserve(ctx context.Context, keys []Key) (res Reservation, wait time.Duration, err error) {
	if len(keys) == 0 {
		return Reservation{}, 0, nil
	}
	// In one order, so that concurrent reservations cannot deadlock.
	keys = slices.SortedFunc(slices.Values(keys), func(a, b Key) int { return strings.Compare(a.Name, b.Name) })
	names := make([]string, len(keys))
	params := make([]db.ReserveAttemptParams, len(keys))
	now := l.now()
	at := pgtype.Timestamptz{Time: now, Valid: true}
	for i, k := range keys {
		names[i] = k.Name
		params[i] = db.ReserveAttemptParams{Key: k.Name, Now: at, MaxFailures: int32(k.Budget.Failures),
			WindowLength: interval(k.Budget.Window), MaxDelay: interval(MaxDelay), ToWindowEnd: k.Budget.Requests}
	}
	// A flood of attempts on a blocked key is refused by a read, which
	// writes nothing.
	if wait, err := l.blocked(ctx, db.New(l.pool), names, now); err != nil || wait > 0 {
		return Reservation{}, wait, err
	}
	res = Reservation{keys: keys, rows: make([]db.ReserveAttemptRow, len(keys))}
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		var refused bool
		var errs []error
		db.New(tx).ReserveAttempt(ctx, params).QueryRow(func(i int, row db.ReserveAttemptRow, err error) {
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				refused = true
			case err != nil:
				errs = append(errs, err)
			default:
				res.rows[i] = row
			}
		})
		if err := errors.Join(errs...); err != nil || !refused {
			return err
		}
		// Blocked since the read: by a concurrent attempt.
		if wait, err = l.blocked(ctx, db.New(tx), names, now); err != nil {
			return err
		}
		wait = max(wait, time.Second)
		return errRefused
	})
	if errors.Is(err, errRefused) {
		return Reservation{}, wait, nil
	}
	if err != nil {
		return Reservation{}, 0, err
	}
	return res, 0, nil
}

// blocked returns how long the longest block of names still runs at now.
func (l *Limiter) blocked(ctx context.Context, q *db.Queries, names []string, now time.Time) (time.Duration, error) {
	until, err := q.BlockedUntil(ctx, names)
	if err != nil || !until.Valid {
		return 0, err
	}
	return max(0, until.Time.Sub(now)), nil
}

type outcomeKey struct{}

// WithOutcome returns ctx with a place for the handler of a throttled
// attempt to record that it succeeded (Succeeded), for an answer that is
// not a 2xx yet is a success: the sign-in page's redirect back with a
// code, or the right password of an account that must still give its
// second factor. ok reports whether it did.
func WithOutcome(ctx context.Context) (_ context.Context, ok *bool) {
	ok = new(bool)
	return context.WithValue(ctx, outcomeKey{}, ok), ok
}

// Succeeded records, in a context from WithOutcome, that the attempt
// succeeded: its answer then settles as a 2xx would. Elsewhere it does
// nothing.
func Succeeded(ctx context.Context) {
	if ok, found := ctx.Value(outcomeKey{}).(*bool); found {
		*ok = true
	}
}

// Failure reports whether an answer's status counts as a failure: 400,
// 401 or 403.
func Failure(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// Settle ends a reservation by the status of the attempt's answer: a
// failure keeps it; a success (2xx) resets the counts of the account keys
// and gives the attempt back to the others; any other answer (5xx, 429,
// 503 from a busy hashing pool) gives it back to every key. An attempt
// given back leaves its key as if it had not been made: one failure fewer
// in the window it was counted in, and no block it set.
func (l *Limiter) Settle(ctx context.Context, res Reservation, status int) error {
	if len(res.keys) == 0 || Failure(status) {
		return nil
	}
	success := status >= 200 && status < 300
	var p db.ReleaseAttemptsParams
	for i, k := range res.keys {
		if k.Budget.Requests {
			continue // every request counts, whatever its answer
		}
		if success && k.Resets {
			p.Reset = append(p.Reset, k.Name)
			continue
		}
		p.Keys = append(p.Keys, k.Name)
		p.WindowStarts = append(p.WindowStarts, res.rows[i].WindowStart)
		p.BlockedUntils = append(p.BlockedUntils, res.rows[i].BlockedUntil)
		p.MaxFailures = append(p.MaxFailures, int32(k.Budget.Failures))
	}
	return db.New(l.pool).ReleaseAttempts(ctx, p)
}

// Enter takes one of the InFlight places of the network of the client
// address addr; ok is false when they are all taken. release frees the
// place.
func (l *Limiter) Enter(addr string) (release func(), ok bool) {
	key := l.Network(addr)
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
