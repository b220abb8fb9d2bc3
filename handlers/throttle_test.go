package handlers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/password"
)

// loginFrom logs in as email with pw, posing as a client at addr (the test
// env trusts its loopback proxy).
func loginFrom(t *testing.T, e *apitest.Env, addr, email, pw string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form("grant_type", "password", "username", email, "password", pw),
		map[string]string{"Content-Type": formCT, "X-Forwarded-For": addr})
}

func assertThrottled(t *testing.T, r response) {
	t.Helper()
	assertOAuthError(t, r, 429, "slow_down")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
}

// An account past its budget from an address is refused with 429 from
// that address, its correct password included, while its owner logs in
// from another address, and another account too.
func TestThrottleAccount(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	alice := e.CreateUser(t, "alice@example.com", "user")
	bob := e.CreateUser(t, "bob@example.com", "user")
	for i := range 10 {
		assertOAuthError(t, loginFrom(t, e, "198.51.100.1", alice.Email, "wrong password"), 400, "invalid_grant")
		_ = i
	}
	assertThrottled(t, loginFrom(t, e, "198.51.100.1", alice.Email, "wrong password"))
	assertThrottled(t, loginFrom(t, e, "198.51.100.1", "ALICE@example.com", alice.Password)) // the account, however spelled
	tokensOf(t, loginFrom(t, e, "198.51.100.2", alice.Email, alice.Password))                // elsewhere, its owner
	tokensOf(t, loginFrom(t, e, "198.51.100.3", bob.Email, bob.Password))
	if n := countRows(t, e, "SELECT count(*) FROM rate_limits WHERE blocked_until IS NOT NULL"); n != 1 {
		t.Errorf("%d blocked keys, want alice's", n)
	}
}

// An address past its budget is refused, while the same account logs in
// from another address.
func TestThrottleAddress(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	carol := e.CreateUser(t, "carol@example.com", "user")
	for i := range 50 {
		r := loginFrom(t, e, "203.0.113.9", fmt.Sprintf("guess%d@example.com", i), "wrong password")
		assertOAuthError(t, r, 400, "invalid_grant")
	}
	assertThrottled(t, loginFrom(t, e, "203.0.113.9", carol.Email, carol.Password))
	tokensOf(t, loginFrom(t, e, "203.0.113.10", carol.Email, carol.Password))
}

// A success resets the account's count.
func TestThrottleSuccessResets(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	u := e.CreateUser(t, "reset@example.com", "user")
	for range 9 {
		loginFrom(t, e, "198.51.100.20", u.Email, "wrong password")
	}
	tokensOf(t, loginFrom(t, e, "198.51.100.20", u.Email, u.Password))
	for range 9 {
		assertOAuthError(t, loginFrom(t, e, "198.51.100.20", u.Email, "wrong password"), 400, "invalid_grant")
	}
	tokensOf(t, loginFrom(t, e, "198.51.100.20", u.Email, u.Password))
}

// Two replicas on one database share one budget.
func TestThrottleAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := apitest.New(t, apitest.Options{TrustLoopback: true})
	b := apitest.New(t, apitest.Options{TrustLoopback: true, Replica: a})
	u := a.CreateUser(t, "shared@example.com", "user")
	for i := range 10 {
		e := a
		if i%2 == 1 {
			e = b
		}
		assertOAuthError(t, loginFrom(t, e, "198.51.100.30", u.Email, "wrong password"), 400, "invalid_grant")
	}
	assertThrottled(t, loginFrom(t, a, "198.51.100.30", u.Email, u.Password))
	assertThrottled(t, loginFrom(t, b, "198.51.100.30", u.Email, u.Password))
}

// X-Forwarded-For counts only from a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{true, false} {
		e := apitest.New(t, apitest.Options{TrustLoopback: trust})
		u := e.CreateUser(t, "proxied@example.com", "user")
		tok := tokensOf(t, loginFrom(t, e, "198.51.100.77", u.Email, u.Password))
		list := sessionList(t, do(t, "GET", e.URL+"/identify/me/sessions", nil, bearer(tok.access)))
		want := "127.0.0.1"
		if trust {
			want = "198.51.100.77"
		}
		if len(list) != 1 || list[0]["client_addr"] != want {
			t.Errorf("trusting the proxy %v: sessions %v, want client_addr %s", trust, list, want)
		}
	}
}

// The flood of the issue: 40 connections of wrong passwords from one
// address get only 400 and 429, never a 5xx, and a login from elsewhere
// meanwhile succeeds: the flood holds at most a few hashing workers.
func TestThrottleFlood(t *testing.T) {
	t.Parallel()
	slowish := password.Params{Memory: 8 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	e := apitest.New(t, apitest.Options{TrustLoopback: true, HashWorkers: 1, HashQueue: 2, HashParams: &slowish})
	victim := e.CreateUser(t, "victim@example.com", "user")
	other := e.CreateUser(t, "other@example.com", "user")
	var bad, total atomic.Int64
	var wg sync.WaitGroup
	for c := range 40 {
		wg.Go(func() {
			for i := range 10 {
				r := loginFrom(t, e, "192.0.2.66", fmt.Sprintf("victim%d@example.com", c*10+i), "wrong password")
				total.Add(1)
				if r.status != 400 && r.status != 429 {
					bad.Add(1)
					t.Errorf("flood answer %d %s", r.status, r.body)
				}
			}
		})
	}
	// A legitimate user elsewhere, during the flood.
	for range 3 {
		tokensOf(t, loginFrom(t, e, "198.51.100.99", other.Email, other.Password))
	}
	wg.Wait()
	t.Logf("flood: %d requests, %d answered other than 400/429", total.Load(), bad.Load())
	_ = victim
}

// Past the budget the delay doubles with each further failure, one attempt
// is let through when it has passed, and the correct password then logs in
// and clears the account: a slow-down, never a lockout.
func TestThrottleDelayGrows(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now, TrustLoopback: true})
	u := e.CreateUser(t, "slowed@example.com", "user")
	for range 9 {
		assertOAuthError(t, loginFrom(t, e, "198.51.100.60", u.Email, "wrong password"), 400, "invalid_grant")
	}
	for _, want := range []int{1, 2, 4, 8} {
		// The failure that reaches (or passes) the budget is answered
		// as what it is; the next attempt meets the delay it started.
		assertOAuthError(t, loginFrom(t, e, "198.51.100.60", u.Email, "wrong password"), 400, "invalid_grant")
		r := loginFrom(t, e, "198.51.100.60", u.Email, u.Password)
		assertThrottled(t, r)
		if got := r.header.Get("Retry-After"); got != strconv.Itoa(want) {
			t.Fatalf("Retry-After = %s, want %d", got, want)
		}
		clk.Advance(time.Duration(want) * time.Second)
	}
	tokensOf(t, loginFrom(t, e, "198.51.100.60", u.Email, u.Password))
	assertOAuthError(t, loginFrom(t, e, "198.51.100.60", u.Email, "wrong password"), 400, "invalid_grant")
}

// A flood of refused attempts on one blocked account is one audit event,
// not one per attempt: an attacker does not get to fill the trail.
func TestThrottledIsAuditedOncePerBlock(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	u := e.CreateUser(t, "flooded@example.com", "user")
	for range 10 {
		loginFrom(t, e, "198.51.100.70", u.Email, "wrong password")
	}
	for range 20 {
		assertThrottled(t, loginFrom(t, e, "198.51.100.70", u.Email, "wrong password"))
	}
	if n := countRows(t, e, "SELECT count(*) FROM audit_events WHERE type = 'login.throttled'"); n != 1 {
		t.Errorf("%d login.throttled events for one block, want 1", n)
	}
}

// clientFrom sends the client credentials grant for c, with Basic
// credentials, posing as a client at addr; kv are more form fields.
func clientFrom(t *testing.T, e *apitest.Env, addr string, c machine, kv ...string) response {
	t.Helper()
	return do(t, "POST", e.URL+"/token", form(append([]string{"grant_type", "client_credentials"}, kv...)...),
		map[string]string{"Content-Type": formCT, "X-Forwarded-For": addr, "Authorization": basic(c.id, c.secret)})
}

// Issue #18, finding 2: one address guessing an account's password (or a
// machine client's secret) as long as it likes never keeps the owner, at
// another address, from logging in; the guesser's own attempts on that
// account stay throttled, the correct one included.
func TestThrottleNoLockout(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	admin := e.CreateUser(t, "root@example.com", "admin")
	victim := e.CreateUser(t, "victim@example.com", "user")
	c := createClient(t, e, e.Token(t, admin), `{"name":"victim client","roles":["system"]}`)
	tests := []struct {
		name    string
		attempt func(addr string, correct bool) response
		fails   int // the status of a wrong guess
	}{
		{"password", func(addr string, correct bool) response {
			pw := "wrong password"
			if correct {
				pw = victim.Password
			}
			return loginFrom(t, e, addr, victim.Email, pw)
		}, 400},
		{"client credentials", func(addr string, correct bool) response {
			m := c
			if !correct {
				m.secret += "x"
			}
			return clientFrom(t, e, addr, m)
		}, 401},
	}
	for i, tt := range tests {
		attacker, owner := fmt.Sprintf("198.51.100.%d", 10+i), fmt.Sprintf("198.51.100.%d", 20+i)
		for n := range 25 {
			r := tt.attempt(attacker, false)
			switch {
			case n < 10 && r.status != tt.fails:
				t.Fatalf("%s: guess %d = %d %s, want %d", tt.name, n+1, r.status, r.body, tt.fails)
			case n >= 10:
				assertThrottled(t, r)
			}
			if n >= 10 && n%5 == 2 {
				if r := tt.attempt(owner, true); r.status != 200 {
					t.Fatalf("%s: the owner, elsewhere, during the guessing: %d %s", tt.name, r.status, r.body)
				}
			}
		}
		assertThrottled(t, tt.attempt(attacker, true))
	}
}

// Issue #18, finding 3: concurrent wrong guesses for one account are
// hashed at most up to its budget (10), the rest answered 429 without
// hashing; when the block lifts, exactly one attempt is let through again.
// The guesses come from distinct addresses of one /64, which count as one
// client address.
func TestThrottleConcurrentGuesses(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := apitest.New(t, apitest.Options{Now: clk.Now, TrustLoopback: true})
	u := e.CreateUser(t, "guessed@example.com", "user")
	hashed := func() int {
		return countRows(t, e, "SELECT count(*) FROM audit_events WHERE type = 'login.failed' AND subject_user_id = $1", u.ID)
	}
	// burst sends n wrong guesses at once and returns the statuses.
	burst := func(n int) map[int]int {
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := loginFrom(t, e, fmt.Sprintf("2001:db8:5:6::%x", i+1), u.Email, "wrong password")
				mu.Lock()
				defer mu.Unlock()
				got[r.status]++
			})
		}
		wg.Wait()
		return got
	}
	const n = 24
	got := burst(n)
	t.Logf("%d guesses at once: %v, %d hashed", n, got, hashed())
	if got[400]+got[429] != n || got[400] > 10 {
		t.Errorf("%d guesses at once: %v, want at most 10 400s, the rest 429", n, got)
	}
	if h := hashed(); h > 10 {
		t.Fatalf("%d guesses at once were hashed %d times, past the budget of 10", n, h)
	}
	// Attempts refused at the hashing pool's door (429, two at once per
	// address) were given back: go on one at a time up to the budget.
	var last response
	for range 11 {
		if last = loginFrom(t, e, "2001:db8:5:6::1", u.Email, "wrong password"); last.status == 429 {
			break
		}
	}
	assertThrottled(t, last)
	if h := hashed(); h != 10 {
		t.Fatalf("the account was blocked after %d hashed guesses, want 10", h)
	}
	wait, _ := strconv.Atoi(last.header.Get("Retry-After"))
	clk.Advance(time.Duration(wait) * time.Second)
	got = burst(n)
	if got[400] != 1 || got[429] != n-1 {
		t.Errorf("%d guesses at once when the block lifted: %v, want one 400, the rest 429", n, got)
	}
	if h := hashed(); h != 11 {
		t.Errorf("when the block lifted, %d more guesses were hashed, want 1", h-10)
	}
}

// Issue #18, finding 4: the addresses of one IPv6 network (a /64 unless
// configured otherwise) share one client address's budget.
func TestThrottleIPv6Network(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix int                // ROLEGATE_THROTTLE_IPV6_PREFIX; 0 for the default
		guess  func(i int) string // the address of the i-th failure
		same   string             // an address in the same network
		other  string             // an address in another network
	}{
		{"default /64", 0, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }, "2001:db8:1:2:ffff::1", "2001:db8:1:3::1"},
		{"/48", 48, func(i int) string { return fmt.Sprintf("2001:db8:1:%x::1", i+1) }, "2001:db8:1:ffff::1", "2001:db8:2::1"},
		{"/128", 128, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }, "", "2001:db8:1:2::ffff"},
		{"IPv4-mapped as IPv4", 0, func(i int) string { return "::ffff:203.0.113.7" }, "203.0.113.7", "203.0.113.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t, apitest.Options{TrustLoopback: true, ThrottleIPv6Prefix: tt.prefix})
			u := e.CreateUser(t, "v6@example.com", "user")
			for i := range 50 {
				assertOAuthError(t, loginFrom(t, e, tt.guess(i), fmt.Sprintf("guess%d@example.com", i), "wrong password"), 400, "invalid_grant")
			}
			if tt.same != "" {
				assertThrottled(t, loginFrom(t, e, tt.same, u.Email, u.Password))
			}
			tokensOf(t, loginFrom(t, e, tt.other, u.Email, u.Password))
		})
	}
}

// Issue #18, finding 5: a client secret guess counts against the client's
// budget whatever else the form holds (a decoy username) and however the
// Basic id is spelled (RFC 6749 section 2.3.1 form-encodes it).
func TestThrottleClientKey(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{TrustLoopback: true})
	admin := e.CreateUser(t, "root@example.com", "admin")
	c := createClient(t, e, e.Token(t, admin), `{"name":"guessed client","roles":["system"]}`)
	tests := []struct {
		name  string
		guess func(addr string, i int) response
	}{
		{"decoy username, Basic", func(addr string, i int) response {
			return clientFrom(t, e, addr, machine{c.id, "wrong"}, "username", fmt.Sprintf("decoy%d@example.com", i))
		}},
		{"decoy username, form", func(addr string, i int) response {
			return do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials", "client_id", c.id, "client_secret", "wrong",
				"username", fmt.Sprintf("decoy%d@example.com", i)), map[string]string{"Content-Type": formCT, "X-Forwarded-For": addr})
		}},
		{"Basic id spelled otherwise", func(addr string, i int) response {
			id := strings.Replace(c.id, "_", "%5F", 1)
			if i%2 == 1 {
				id = "%63" + c.id[1:] // c
			}
			return do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials"), map[string]string{"Content-Type": formCT,
				"X-Forwarded-For": addr, "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":wrong"))})
		}},
	}
	for i, tt := range tests {
		addr := fmt.Sprintf("198.51.100.%d", 110+i)
		for n := range 10 {
			if r := tt.guess(addr, n); r.status != 401 {
				t.Fatalf("%s: guess %d = %d %s, want 401", tt.name, n+1, r.status, r.body)
			}
		}
		assertThrottled(t, clientFrom(t, e, addr, c))
	}
}

// Issue #18, finding 13: golang.org/x/oauth2's default configuration, with
// no client, first sends an empty HTTP Basic id and secret, which is no
// client authentication: it is answered as if absent, so 60 logins from
// one address, each by a fresh Config, all succeed and none is a failure.
func TestThrottleXOAuth2Default(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "oauth2@example.com", "user")
	for i := range 60 {
		cfg := oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: e.URL + "/token"}}
		tok, err := cfg.PasswordCredentialsToken(context.Background(), u.Email, u.Password)
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("login %d with x/oauth2's defaults: %v", i+1, err)
		}
	}
	if n := countRows(t, e, "SELECT count(*) FROM audit_events WHERE type = 'login.failed'"); n != 0 {
		t.Errorf("%d login.failed events, want none", n)
	}
	if n := countRows(t, e, "SELECT coalesce(sum(failures), 0)::integer FROM rate_limits"); n != 0 {
		t.Errorf("%d failures counted, want none", n)
	}
	// The empty Basic credentials on the client credentials grant are no
	// credentials either.
	r := do(t, "POST", e.URL+"/token", form("grant_type", "client_credentials"), map[string]string{"Content-Type": formCT, "Authorization": "Basic Og=="})
	assertInvalidClient(t, r)
}
