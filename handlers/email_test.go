package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/sdk"
)

// loginAs logs in through /token with the Go SDK and returns the id of the
// account the token is for.
func loginAs(t *testing.T, e *apitest.Env, username, pw string) int64 {
	t.Helper()
	tok, err := sdk.Token(context.Background(), e.URL, username, pw, api.WithHTTPClient(apitest.HTTPClient(t)))
	if err != nil {
		t.Fatalf("login as %+q: %v", username, err)
	}
	claims, err := e.Tokens.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return claims.UserID
}

// createUser posts an account through the API as an admin.
func createUser(t *testing.T, e *apitest.Env, adminToken, addr, pw string) *api.CreateUserResponse {
	t.Helper()
	r, err := e.Client(t, adminToken).CreateUserWithResponse(context.Background(),
		api.CreateUserJSONRequestBody{Email: api.Email(addr), Password: pw, Roles: []string{"user"}})
	must(t, err)
	return r
}

// Emails compare by their canonical form: case, width, Unicode
// normalization and the encoding of the domain do not make another account.
// Each pair is one account, created once (the second spelling is 409) and
// reached by either spelling at login.
func TestEmailSpellingsOfOneAccount(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	tests := []struct {
		name, first, second string
	}{
		{"Kelvin sign", "kate@example.com", "\u212Aate@example.com"},
		{"Kelvin sign first", "\u212Aarl@example.com", "karl@example.com"},
		{"fullwidth letters", "kim@example.com", "\uff2b\uff49\uff4d@example.com"},
		{"NFC and NFD café", "caf\u00e9@example.com", "cafe\u0301@example.com"},
		{"NFD and NFC in the domain", "bob@bu\u0308cher.example", "bob@b\u00fccher.example"},
		{"IDN domain, Unicode and ASCII", "dora@b\u00fccher.example", "dora@XN--BCHER-KVA.example"},
		{"ASCII case", "Mixed.Case@Example.COM", "mixed.case@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := e.CreateUser(t, tt.first, "user")
			r := createUser(t, e, tok, tt.second, "another long password")
			p := assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON409}, 409)
			if p.Detail == nil || *p.Detail != "An account with this email exists." {
				t.Errorf("409 detail: %s", r.Body)
			}
			for _, spelling := range []string{tt.first, tt.second, strings.ToUpper(tt.first)} {
				if id := loginAs(t, e, spelling, u.Password); id != u.ID {
					t.Errorf("login as %+q reached user %d, want %d", spelling, id, u.ID)
				}
			}
		})
	}
	t.Cleanup(func() {
		if n := countRows(t, e, "SELECT count(*) FROM users"); n != 1+len(tests) {
			t.Errorf("%d accounts, want %d", n, 1+len(tests))
		}
	})
}

// Look-alikes are other accounts: PostgreSQL's lower() folded ALİCE (with a
// dotted capital I) into alice, so that it logged in as alice.
func TestEmailLookAlikesAreOtherAccounts(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	alice := e.CreateUser(t, "alice@example.com", "user")
	lookAlikes := []string{
		"AL\u0130CE@example.com", // dotted capital I
		"al\u0131ce@example.com", // dotless small i
		"\u0430lice@example.com", // Cyrillic a
	}
	for _, addr := range lookAlikes {
		err := sdkLogin(t, e, addr, alice.Password)
		assertInvalidGrant(t, err, "login as "+addr+" with alice's password")
	}
	// They are free for accounts of their own, which do not log in as alice.
	for _, addr := range lookAlikes {
		r := createUser(t, e, tok, addr, "another long password")
		if r.JSON201 == nil {
			t.Fatalf("create %+q = %d %s", addr, r.StatusCode(), r.Body)
		}
		if id := loginAs(t, e, addr, "another long password"); id != r.JSON201.Id || id == alice.ID {
			t.Errorf("login as %+q reached user %d, want %d", addr, id, r.JSON201.Id)
		}
	}
	if id := loginAs(t, e, "Alice@EXAMPLE.com", alice.Password); id != alice.ID {
		t.Errorf("mixed-case login reached user %d, want alice (%d)", id, alice.ID)
	}
}

// Invisible and direction-changing characters make no account and log into
// none: POST /users answers 400 naming body.email, /token invalid_grant, also
// when the address without them is an account's.
func TestEmailInvisibleCharactersAreRefused(t *testing.T) {
	t.Parallel()
	e, _, tok := adminEnv(t)
	bob := e.CreateUser(t, "bob@example.com", "user")
	tests := []struct{ name, addr string }{
		{"zero-width space", "b\u200bob@example.com"},
		{"zero-width joiner", "bo\u200db@example.com"},
		{"zero-width non-joiner", "bo\u200cb@example.com"},
		{"byte order mark", "\ufeffbob@example.com"},
		{"word joiner", "bob\u2060@example.com"},
		{"zero-width space in the domain", "bob@exam\u200bple.com"},
		{"soft hyphen in the domain", "bob@exam\u00adple.com"},
		{"right-to-left override", "\u202ebob@example.com"},
		{"right-to-left mark", "bob\u200f@example.com"},
		{"bidi isolate", "bob@\u2067example.com"},
		{"Hangul filler", "bob\u3164@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := createUser(t, e, tok, tt.addr, bob.Password)
			p := assertSDKProblem(t, answer{r.HTTPResponse, r.Body, r.ApplicationproblemJSON400}, 400)
			if fields := errorFields(p); len(fields) != 1 || fields[0] != "body.email" {
				t.Errorf("400 names %v, want body.email: %s", fields, r.Body)
			}
			// With bob's password: neither a new account nor bob.
			assertInvalidGrant(t, sdkLogin(t, e, tt.addr, bob.Password), "login as "+tt.addr)
		})
	}
	t.Cleanup(func() {
		if n := countRows(t, e, "SELECT count(*) FROM users"); n != 2 {
			t.Errorf("%d accounts, want 2", n)
		}
	})
}

// A username without a canonical form is answered exactly as an unknown
// email, after the same dummy hash, so that neither the answer nor its
// timing tells them apart: under a saturated hashing pool both are shed.
func TestLoginWithoutCanonicalFormCostsAHash(t *testing.T) {
	t.Parallel()
	slow := password.Params{Memory: 64 * 1024, Time: 4, Threads: 1, SaltLen: 16, KeyLen: 32}
	// Each attempt from its own address and at its own name, so that
	// throttling leaves the pool to saturate.
	e := apitest.New(t, apitest.Options{TrustLoopback: true, HashWorkers: 1, HashQueue: 1, HashParams: &slow})
	unknown := login(t, e, "nobody@example.com", "some password")
	invalid := login(t, e, "no\u200bbody@example.com", "some password")
	if unknown.status != 400 || invalid.status != 400 || invalid.body != unknown.body {
		t.Fatalf("unknown email: %d %s; no canonical form: %d %s; want the same invalid_grant", unknown.status, unknown.body, invalid.status, invalid.body)
	}
	const n = 12
	got := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i] = loginFrom(t, e, fmt.Sprintf("198.51.100.%d", 100+i), fmt.Sprintf("no\u200bbody%d@example.com", i), "some password")
		})
	}
	close(start)
	wg.Wait()
	var refused, busy int
	for _, r := range got {
		switch {
		case r.status == 400 && r.body == unknown.body:
			refused++
		case r.status == 503:
			busy++
		default:
			t.Errorf("login = %d %s", r.status, r.body)
		}
	}
	if refused == 0 || busy == 0 {
		t.Errorf("%d refused and %d shed; want some of each: every attempt waits for a hash", refused, busy)
	}
}
