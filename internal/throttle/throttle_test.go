package throttle

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/testdb"
)

func TestParse(t *testing.T) {
	budget := func(n float64, w string) map[string]any { return map[string]any{"failures": n, "window": w} }
	tests := []struct {
		name string
		ext  any
		want *Rule // nil: refused, with an error containing err
		err  string
	}{
		{"both", map[string]any{"per-account": budget(10, "15m"), "per-address": budget(50, "15m")},
			&Rule{PerAccount: &Budget{Failures: 10, Window: 15 * time.Minute}, PerAddress: &Budget{Failures: 50, Window: 15 * time.Minute}}, ""},
		{"one", map[string]any{"per-address": budget(3, "1h")}, &Rule{PerAddress: &Budget{Failures: 3, Window: time.Hour}}, ""},
		{"not an object", "10/15m", nil, "must be an object"},
		{"no budget", map[string]any{}, nil, "declares no budget"},
		{"unknown budget", map[string]any{"per-day": budget(1, "1m")}, nil, "unknown budget"},
		{"fractional", map[string]any{"per-account": budget(1.5, "1m")}, nil, "whole number"},
		{"zero", map[string]any{"per-account": budget(0, "1m")}, nil, "whole number"},
		{"extra field", map[string]any{"per-account": map[string]any{"failures": 1.0, "window": "1m", "x": 1}}, nil, "want {failures"},
		{"bad window", map[string]any{"per-account": budget(1, "soon")}, nil, "window"},
		{"window past the pruning", map[string]any{"per-account": budget(1, "2h")}, nil, "at most 1h"},
		{"requests", map[string]any{"per-address": map[string]any{"requests": 5.0, "window": "1h"}},
			&Rule{PerAddress: &Budget{Failures: 5, Window: time.Hour, Requests: true}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.ext)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse = %+v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !same(got.PerAccount, tt.want.PerAccount) || !same(got.PerAddress, tt.want.PerAddress) {
				t.Errorf("Parse = %+v / %+v, want %+v / %+v", got.PerAccount, got.PerAddress, tt.want.PerAccount, tt.want.PerAddress)
			}
		})
	}
}

func same(a, b *Budget) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func TestMain(m *testing.M) { testdb.Main(m) }

func TestNetwork(t *testing.T) {
	tests := []struct {
		addr   string
		prefix int
		want   string
	}{
		{"198.51.100.7", 64, "198.51.100.7"},
		{"::ffff:198.51.100.7", 64, "198.51.100.7"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"", 64, ""},
		{"not an address", 64, "not an address"},
	}
	for _, tt := range tests {
		if got := Network(tt.addr, tt.prefix); got != tt.want {
			t.Errorf("Network(%q, %d) = %q, want %q", tt.addr, tt.prefix, got, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	r := &Rule{PerAccount: &Budget{Failures: 10, Window: 15 * time.Minute}, PerAddress: &Budget{Failures: 50, Window: time.Hour}}
	want := "at most 10 failures per account from one client address per 15m and 50 failures per client address per 1h " +
		"(an IPv6 client address counts by its /64). An attempt counts as a failure from its start until it is answered " +
		"otherwise, so concurrent attempts cannot pass a budget. Past a budget 429 with Retry-After, a delay that doubles " +
		"with each further failure (up to 15m), after which one attempt at a time is let through; a success resets the " +
		"account's count from that address."
	if got := r.Describe(64); got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
}

// clock is a test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// reserveAtOnce makes n reservations of keys at once and returns those
// that were granted; the others must be refused with a wait.
func reserveAtOnce(t *testing.T, l *Limiter, n int, keys ...Key) []Reservation {
	t.Helper()
	var mu sync.Mutex
	var granted []Reservation
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, wait, err := l.Reserve(context.Background(), keys)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case wait > 0:
			default:
				granted = append(granted, res)
			}
		})
	}
	wg.Wait()
	return granted
}

func failures(t *testing.T, l *Limiter, key string) int {
	t.Helper()
	var n int
	err := l.pool.QueryRow(context.Background(), "SELECT coalesce((SELECT failures FROM rate_limits WHERE key = $1), 0)", key).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Concurrent attempts are counted before they are made: of 24 at once
// against a budget of 10, 10 are let through; when the block lifts, one.
// Attempts given back leave the key as it was, and a key refused takes
// no other key with it.
func TestReserve(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Now().Truncate(time.Microsecond).UnixNano()) // PostgreSQL's precision
	l := New(testdb.New(t), clk.Now, 0)
	ctx := context.Background()
	acct := Key{Name: "account:op:198.51.100.1 email:a@example.com", Budget: Budget{Failures: 10, Window: 15 * time.Minute}, Resets: true}
	addr := Key{Name: "address:op:198.51.100.1", Budget: Budget{Failures: 50, Window: 15 * time.Minute}}

	if got := len(reserveAtOnce(t, l, 24, acct, addr)); got != 10 {
		t.Fatalf("24 attempts at once: %d let through, want 10", got)
	}
	if a, b := failures(t, l, acct.Name), failures(t, l, addr.Name); a != 10 || b != 10 {
		t.Fatalf("after 24 attempts at once, 10 let through: account %d, address %d failures; want 10 and 10", a, b)
	}
	clk.Advance(time.Second)
	granted := reserveAtOnce(t, l, 24, acct, addr)
	if len(granted) != 1 {
		t.Fatalf("24 attempts at once when the block lifted: %d let through, want 1", len(granted))
	}
	// Given back (a 503), the attempt leaves no block: the next one is let
	// through at once, and blocks again.
	if err := l.Settle(ctx, granted[0], 503); err != nil {
		t.Fatal(err)
	}
	if a := failures(t, l, acct.Name); a != 10 {
		t.Errorf("after an attempt given back: %d failures, want 10", a)
	}
	res, wait, err := l.Reserve(ctx, []Key{acct, addr})
	if err != nil || wait != 0 {
		t.Fatalf("after an attempt given back: Reserve = %v, %v; want let through", wait, err)
	}
	if _, wait, _ := l.Reserve(ctx, []Key{acct, addr}); wait != 2*time.Second {
		t.Errorf("past the budget by 1: wait %v, want 2s", wait)
	}
	// A success resets the account and gives the address its attempt back.
	if err := l.Settle(ctx, res, 200); err != nil {
		t.Fatal(err)
	}
	if a, b := failures(t, l, acct.Name), failures(t, l, addr.Name); a != 0 || b != 10 {
		t.Errorf("after a success: account %d, address %d failures; want 0 and 10", a, b)
	}
	// While a key is blocked, attempts on it take nothing from the others.
	other := Key{Name: "account:op:198.51.100.1 email:b@example.com", Budget: Budget{Failures: 1, Window: 15 * time.Minute}, Resets: true}
	if _, wait, _ := l.Reserve(ctx, []Key{other, addr}); wait != 0 {
		t.Fatal("the first attempt on a budget of 1 was refused")
	}
	for range 5 {
		if _, wait, _ := l.Reserve(ctx, []Key{other, addr}); wait == 0 {
			t.Fatal("an attempt on a blocked key was let through")
		}
	}
	if b := failures(t, l, addr.Name); b != 11 {
		t.Errorf("refused attempts took from the address: %d failures, want 11", b)
	}
}

// TestRequestsBudget: a budget of requests counts every request, the
// successful ones too, and nothing gives an attempt back.
func TestRequestsBudget(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Now().Truncate(time.Microsecond).UnixNano())
	l := New(testdb.New(t), clk.Now, 0)
	ctx := context.Background()
	mails := Key{Name: "address:sendMail:198.51.100.9", Budget: Budget{Failures: 3, Window: time.Hour, Requests: true}}
	for i, status := range []int{202, 503, 202} {
		res, wait, err := l.Reserve(ctx, []Key{mails})
		if err != nil || wait != 0 {
			t.Fatalf("request %d: wait %v, %v; want let through", i+1, wait, err)
		}
		if err := l.Settle(ctx, res, status); err != nil {
			t.Fatal(err)
		}
	}
	if n := failures(t, l, mails.Name); n != 3 {
		t.Errorf("after 3 requests: %d counted, want 3", n)
	}
	if _, wait, _ := l.Reserve(ctx, []Key{mails}); wait == 0 {
		t.Error("a 4th request within the hour was let through")
	}
	// Blocked until the window ends, not for a doubling delay.
	clk.Advance(59 * time.Minute)
	if _, wait, _ := l.Reserve(ctx, []Key{mails}); wait == 0 {
		t.Error("a request 59 minutes on was let through")
	}
	clk.Advance(2 * time.Minute)
	if _, wait, err := l.Reserve(ctx, []Key{mails}); wait != 0 || err != nil {
		t.Errorf("a request in the next window: wait %v, %v; want let through", wait, err)
	}
}
