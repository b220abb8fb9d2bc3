package handlers_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rolegate/rolegate/apitest"
)

// assertTokenRefused checks the 401 of a token that verifies but that its
// account no longer backs.
func assertTokenRefused(t *testing.T, r response) {
	t.Helper()
	assertProblem(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", got)
	}
}

// call is one request of an admin test; {alice} and {bob} in path stand
// for those accounts' ids.
type call struct{ method, path, body string }

func (c call) do(t *testing.T, e *apitest.Env, tok string, alice, bob apitest.User) response {
	t.Helper()
	path := strings.NewReplacer("{alice}", strconv.FormatInt(alice.ID, 10), "{bob}", strconv.FormatInt(bob.ID, 10)).Replace(c.path)
	return do(t, c.method, e.URL+path, strings.NewReader(c.body), jsonHeaders(tok))
}

var (
	disableBob = call{"POST", "/users/{bob}/disable", ""}
	demoteBob  = call{"PUT", "/users/{bob}/roles", `{"roles":["user"]}`}
	deleteBob  = call{"DELETE", "/users/{bob}", ""}
)

// An admin removed from office keeps a token that still says admin until it
// expires; account administration checks the account again, in the
// transaction of the change, so that token can neither undo the removal nor
// do anything else there.
func TestRemovedAdminIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remove call // what alice does to bob
		try    call // what bob then tries with the token he had
		// intact counts rows, $1 being bob's id and $2 alice's, and must be
		// 1 afterwards: the attempt changed nothing.
		intact string
	}{
		{"disabled admin enables himself", disableBob, call{"POST", "/users/{bob}/enable", ""},
			"SELECT count(*) FROM users WHERE id = $1 AND disabled AND $2 > 0"},
		{"demoted admin gives himself admin again", demoteBob, call{"PUT", "/users/{bob}/roles", `{"roles":["admin","user"]}`},
			"SELECT count(*) FROM users u WHERE id = $1 AND $2 > 0 AND NOT EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = u.id AND r.name = 'admin')"},
		{"deleted admin creates a new admin", deleteBob, call{"POST", "/users", `{"email":"sleeper@example.com","password":"a long enough password","roles":["admin"]}`},
			"SELECT count(*) FROM users WHERE id <> $1 AND id = $2"},
		{"demoted admin disables the other admin", demoteBob, call{"POST", "/users/{alice}/disable", ""},
			"SELECT count(*) FROM users WHERE id = $2 AND NOT disabled AND $1 > 0"},
		{"disabled admin deletes the other admin", disableBob, call{"DELETE", "/users/{alice}", ""},
			"SELECT count(*) FROM users WHERE id = $2 AND $1 > 0"},
		{"demoted admin creates a role", demoteBob, call{"POST", "/roles", `{"name":"backdoor"}`},
			"SELECT 1 - count(*) FROM roles WHERE name = 'backdoor' AND $1 > 0 AND $2 > 0"},
		{"disabled admin lists the accounts", disableBob, call{"GET", "/users", ""},
			"SELECT 1 WHERE $1 > 0 AND $2 > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t)
			alice := e.CreateUser(t, "alice@example.com", "admin", "user")
			bob := e.CreateUser(t, "bob@example.com", "admin", "user")
			bobTok := e.Token(t, bob) // issued while bob is an admin
			if r := tt.remove.do(t, e, e.Token(t, alice), alice, bob); r.status >= 300 {
				t.Fatalf("alice removing bob: %d %s", r.status, r.body)
			}
			assertTokenRefused(t, tt.try.do(t, e, bobTok, alice, bob))
			if n := countRows(t, e, tt.intact, bob.ID, alice.ID); n != 1 {
				t.Errorf("after the refused request: %s = %d, want 1", tt.intact, n)
			}
			if n := countRows(t, e, "SELECT count(*) FROM users WHERE email = 'sleeper@example.com'"); n != 0 {
				t.Errorf("the removed admin created an account")
			}
		})
	}
}

// An admin cannot enable their own account either: an admin whose token
// outlived their disabling must not be able to undo it.
func TestAdminCannotEnableThemselves(t *testing.T) {
	t.Parallel()
	e, admin, tok := adminEnv(t)
	m := assertProblem(t, do(t, "POST", e.URL+"/users/"+strconv.FormatInt(admin.ID, 10)+"/enable", nil, bearer(tok)), http.StatusConflict)
	if m["detail"] != "You cannot enable your own account." {
		t.Errorf("detail = %v", m["detail"])
	}
}

// Two admins removing each other at the same moment, in every combination
// of demoting, disabling and deleting, never leave zero enabled admins:
// exactly one of the two wins, and the other's token is refused.
func TestConcurrentAdminRemovalsLeaveAnAdmin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	const rounds = 8
	removals := map[string]call{"demote": demoteBob, "disable": disableBob, "delete": deleteBob}
	for aName, aCall := range removals {
		for bName, bCall := range removals {
			for round := range rounds {
				// The admin set is exactly these two, so that a lost race
				// would show as no admin at all.
				if _, err := e.Pool.Exec(ctx, "DELETE FROM users"); err != nil {
					t.Fatal(err)
				}
				alice := e.CreateUser(t, "alice@example.com", "admin", "user")
				bob := e.CreateUser(t, "bob@example.com", "admin", "user")
				aliceTok, bobTok := e.Token(t, alice), e.Token(t, bob)
				// Each removes the other: bob's call is aCall with the names
				// swapped, so the same table serves both directions.
				var wg sync.WaitGroup
				start := make(chan struct{})
				statuses := make([]int, 2)
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					statuses[0] = aCall.do(t, e, aliceTok, alice, bob).status
				}()
				go func() {
					defer wg.Done()
					<-start
					statuses[1] = bCall.do(t, e, bobTok, bob, alice).status
				}()
				close(start)
				wg.Wait()

				admins := countRows(t, e, `SELECT count(*) FROM users u WHERE NOT disabled AND EXISTS (
					SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = u.id AND r.name = 'admin')`)
				won := 0
				for _, s := range statuses {
					if s < 300 {
						won++
					} else if s != http.StatusUnauthorized {
						t.Errorf("%s vs %s, round %d: a loser got %d, want 401", aName, bName, round, s)
					}
				}
				if admins != 1 || won != 1 {
					t.Fatalf("alice %ss bob while bob %ss alice, round %d: statuses %v, %d enabled admins left; want one winner and one admin",
						aName, bName, round, statuses, admins)
				}
			}
		}
	}
}
