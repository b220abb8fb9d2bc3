package handlers_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/orgs/orgstest"
)

// TestOrgScale is the scale through HTTP: 100k organizations and
// 1M memberships (100k accounts in 10 each) in the database, and a replica
// started on it, which loads them all. On that replica, an account has its
// roles where it is a member and gets 404 where it is not, and each of
// 2000 seeded memberships, sampled across the 1M, lists its
// organization's notes. It logs what the issue asks for: the replica's
// heap, in all and per membership, and the latency of an org-scoped GET
// beside a global one (2000 of each, one at a time, interleaved). Timings
// are logged, not asserted.
//
// It does not run in parallel: the heap it measures is the whole
// process's, which the tests beside it would add to, and its seed, seconds
// of PostgreSQL's work, could push the tests that bound a time (a change
// reaching another replica within a second) past their bound.
func TestOrgScale(t *testing.T) {
	const accounts, orgCount, perAccount, samples = 100_000, 100_000, 10, 2000
	primary := apitest.New(t)
	// Written with no change log: primary, which follows it, is not made
	// to re-read 1M memberships; the replica loads them at start.
	n := orgstest.Seed(t, primary.Pool, accounts, orgCount, perAccount)
	if n != accounts*perAccount {
		t.Fatalf("seeded %d memberships, want %d", n, accounts*perAccount)
	}
	ctx := t.Context()
	member := primary.CreateUser(t, "member@example.com", "user")
	orgID := func(slug string) int64 {
		t.Helper()
		var id int64
		if err := primary.Pool.QueryRow(ctx, "SELECT id FROM orgs WHERE slug = $1", slug).Scan(&id); err != nil {
			t.Fatalf("organization %s: %v", slug, err)
		}
		return id
	}
	viewerOrg, editorOrg, otherOrg := orgID("scale-50000"), orgID("scale-99999"), orgID("scale-1")
	if _, err := primary.Pool.Exec(ctx, `INSERT INTO org_members (org_id, user_id, roles) VALUES ($1, $3, '{viewer}'), ($2, $3, '{editor,viewer}')`,
		viewerOrg, editorOrg, member.ID); err != nil {
		t.Fatal(err)
	}
	type sample struct {
		user  apitest.User
		org   int64
		token string
	}
	picked := make([]sample, 0, samples)
	rows, err := primary.Pool.Query(ctx, `SELECT m.user_id, u.email, m.org_id FROM org_members m JOIN users u ON u.id = m.user_id
		WHERE u.email LIKE 'scale%' ORDER BY random() LIMIT $1`, samples)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		s := sample{user: apitest.User{Roles: []string{"user"}}}
		if err := rows.Scan(&s.user.ID, &s.user.Email, &s.org); err != nil {
			t.Fatal(err)
		}
		picked = append(picked, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	before := orgstest.Heap()
	started := time.Now()
	replica := apitest.New(t, apitest.Options{Replica: primary})
	took := time.Since(started)
	grown := float64(orgstest.Heap()) - float64(before)
	t.Logf("replica started, loading %d memberships, in %v; its heap: %.1f MB, %.0f bytes per membership",
		n, took.Round(time.Millisecond), grown/1e6, grown/float64(n))
	// The copy takes about 56 bytes a membership (orgs.BenchmarkLoad1M)
	// and the rest of a replica a few MB. 100 bytes is 40 MB above that,
	// far more than the noise of a quiet process's heap, and below a copy
	// that does not share its sets of role names (121 bytes, measured).
	if perMembership := grown / float64(n); perMembership > 100 {
		t.Errorf("the replica's heap grew by %.0f bytes per membership, want at most 100", perMembership)
	}

	// The feeds are up, and the gate answers by the account's roles. (Its
	// memberships, made within 30 seconds, reach the replica through the
	// log's re-read as well as its load; the seeded ones below only
	// through the load.)
	if r := do(t, "GET", replica.URL+"/readyz", nil, nil); r.status != 200 {
		t.Fatalf("GET /readyz on the replica: %d %s", r.status, r.body)
	}
	note := `{"document_src":"reports/scale.pdf","title":"Scale","body":"1M memberships."}`
	tok := replica.Token(t, member)
	for _, tc := range []struct {
		name, method string
		org          int64
		body         string
		want         int
	}{
		{"a viewer lists", "GET", viewerOrg, "", 200},
		{"a viewer creates", "POST", viewerOrg, note, 403},
		{"an editor creates", "POST", editorOrg, note, 201},
		{"no member lists", "GET", otherOrg, "", 404},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		if r := do(t, tc.method, fmt.Sprintf("%s/orgs/%d/notes", replica.URL, tc.org), body, jsonHeaders(tok)); r.status != tc.want {
			t.Errorf("%s: %s /orgs/%d/notes = %d %s, want %d", tc.name, tc.method, tc.org, r.status, r.body, tc.want)
		}
	}

	// A plain client: the contract client's checking of every response
	// would count in the latency.
	client := &http.Client{}
	get := func(url, token string) time.Duration {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d, want 200", url, resp.StatusCode)
		}
		return took
	}
	// A first round, not timed: each seeded membership sampled lists its
	// organization's notes, and the replica verifies each token once and
	// keeps it, as a client's next request finds it.
	for i, s := range picked {
		picked[i].token = replica.Token(t, s.user)
		get(fmt.Sprintf("%s/orgs/%d/notes", replica.URL, s.org), picked[i].token)
	}
	var scoped, global []time.Duration
	for _, s := range picked {
		scoped = append(scoped, get(fmt.Sprintf("%s/orgs/%d/notes", replica.URL, s.org), s.token))
		global = append(global, get(replica.URL+"/notes", s.token))
	}
	for _, l := range []struct {
		name string
		ds   []time.Duration
	}{{"org-scoped GET /orgs/{orgId}/notes", scoped}, {"global GET /notes", global}} {
		slices.Sort(l.ds)
		t.Logf("%s, %d sequential on the replica: p50 %v, p99 %v", l.name, len(l.ds), l.ds[len(l.ds)/2], l.ds[len(l.ds)*99/100])
	}
}
