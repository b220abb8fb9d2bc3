package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/token"
)

// event is one server-sent event of a feed's stream.
type event struct{ name, id, data string }

// stream is an open GET /revocations/events or /memberships/events.
type stream struct {
	events chan event
	ended  chan struct{} // closed when the body ends
}

// openStream opens the revocation stream with bearer and, unless empty,
// Last-Event-ID, and fails unless it answers 200 text/event-stream.
func openStream(t *testing.T, e *apitest.Env, bearer, lastEventID string) *stream {
	t.Helper()
	return openEvents(t, e.URL+"/revocations/events", bearer, lastEventID)
}

// openEvents opens the stream at u, as openStream does.
func openEvents(t *testing.T, u, bearer, lastEventID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		resp.Body.Close()
		t.Fatalf("GET %s = %d %v", u, resp.StatusCode, resp.Header)
	}
	s := &stream{events: make(chan event, 1000), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					s.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					ev.name = v
				case "id":
					ev.id = v
				case "data":
					ev.data = v
				}
			}
		}
	}()
	return s
}

// until returns the events up to and including the first for which ok
// holds, failing after 3 seconds.
func (s *stream) until(t *testing.T, ok func(event) bool) []event {
	t.Helper()
	var got []event
	timeout := time.After(3 * time.Second)
	for {
		select {
		case ev := <-s.events:
			got = append(got, ev)
			if ok(ev) {
				return got
			}
		case <-timeout:
			t.Fatalf("no such event within 3s; got %v", got)
		}
	}
}

func caughtUp(ev event) bool { return ev.name == "caught-up" }

// entryOf decodes a revocation event's data.
func entryOf(t *testing.T, ev event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if ev.name != "revocation" || ev.id != fmt.Sprint(m["seq"]) {
		t.Errorf("event %q with id %q for entry %v", ev.name, ev.id, m)
	}
	return m
}

// has reports whether events hold a revocation entry with the given
// field's value.
func has(t *testing.T, events []event, field string, value any) bool {
	t.Helper()
	for _, ev := range events {
		if ev.name == "revocation" && fmt.Sprint(entryOf(t, ev)[field]) == fmt.Sprint(value) {
			return true
		}
	}
	return false
}

// The revocation feed through the API: the snapshot and the stream admit
// only resource-server tokens; the snapshot holds the entries in force;
// the stream sends what was missed after Last-Event-ID, then a caught-up
// event, then revocations as they happen, on any replica; it is bounded,
// and ends when the replica drains.
func TestRevocationFeed(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{FeedStreams: 4})
	admin := e.Token(t, e.CreateUser(t, "root@example.com", "admin", "user"))
	c := createClient(t, e, admin, `{"name":"reports","roles":["resource-server"]}`)
	feed := clientToken(t, e, c, "scope", "resource-server").json(t)["access_token"].(string)

	for _, path := range []string{"/revocations", "/revocations/events"} {
		r := do(t, "GET", e.URL+path, nil, nil)
		assertProblem(t, r, 401)
		m := assertProblem(t, do(t, "GET", e.URL+path, nil, bearer(admin)), 403)
		if fmt.Sprint(m["required_roles"]) != "[resource-server]" {
			t.Errorf("GET %s as an admin: required_roles %v", path, m["required_roles"])
		}
	}
	assertProblem(t, do(t, "GET", e.URL+"/revocations/events", nil, map[string]string{"Authorization": "Bearer " + feed, "Last-Event-ID": "x"}), 400)

	// An entry older than the re-read overlap: only a stream from before
	// its seq sends it.
	var old int64
	if err := e.Pool.QueryRow(context.Background(), `INSERT INTO revocations (token_id, expires_at, created_at)
		VALUES ('old-jti', now() + interval '1 hour', now() - interval '5 minutes') RETURNING seq`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	alice := e.CreateUser(t, "alice@example.com", "user")
	loginTokens(t, e, alice)
	if r := do(t, "DELETE", e.URL+fmt.Sprintf("/users/%d/sessions", alice.ID), nil, bearer(admin)); r.status != 204 {
		t.Fatalf("signing alice out: %d %s", r.status, r.body)
	}

	snap := do(t, "GET", e.URL+"/revocations", nil, bearer(feed))
	var body struct {
		Seq     int64            `json:"seq"`
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(snap.body), &body); err != nil || snap.status != 200 || snap.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /revocations = %d %s", snap.status, snap.body)
	}
	kinds := map[string]int{}
	for _, en := range body.Entries {
		kinds[fmt.Sprint(en["kind"])]++
		if s, ok := en["seq"].(float64); !ok || int64(s) > body.Seq {
			t.Errorf("entry %v past the snapshot's seq %d", en, body.Seq)
		}
	}
	if kinds["session"] != 1 || kinds["token"] != 1 || body.Seq <= old {
		t.Fatalf("snapshot %s: want alice's ended session and the old jti", snap.body)
	}

	// From the start: everything in force, then caught up.
	all := openStream(t, e, feed, "").until(t, caughtUp)
	if !has(t, all, "token_id", "old-jti") || !has(t, all, "kind", "session") {
		t.Errorf("a stream without Last-Event-ID: %v", all)
	}
	// From the snapshot: the last 30 s again (the ended session), not the
	// old entry before it.
	s := openStream(t, e, feed, fmt.Sprint(body.Seq))
	resumed := s.until(t, caughtUp)
	if has(t, resumed, "token_id", "old-jti") || !has(t, resumed, "kind", "session") {
		t.Errorf("a stream from the snapshot's seq: %v", resumed)
	}
	if want := fmt.Sprintf(`{"seq":%d}`, body.Seq); resumed[len(resumed)-1].data != want {
		t.Errorf("caught-up %q, want %s", resumed[len(resumed)-1].data, want)
	}

	// Revocations as they happen: a change of roles on this replica, a
	// jti revoked on another (through the log, by its notification).
	bob := e.CreateUser(t, "bob@example.com", "user")
	if r := do(t, "PUT", e.URL+fmt.Sprintf("/users/%d/roles", bob.ID), strings.NewReader(`{"roles":["admin"]}`), jsonHeaders(admin)); r.status != 200 {
		t.Fatalf("PUT roles = %d %s", r.status, r.body)
	}
	got := s.until(t, func(ev event) bool {
		return ev.name == "revocation" && fmt.Sprint(entryOf(t, ev)["user_id"]) == fmt.Sprint(bob.ID)
	})
	bobs := entryOf(t, got[len(got)-1])
	if bobs["kind"] != "user" || bobs["min_version"] == nil || bobs["expires_at"] == nil {
		t.Errorf("bob's entry %v", bobs)
	}
	other := apitest.New(t, apitest.Options{Replica: e})
	exp := time.Now().Add(10 * time.Minute)
	if err := other.Sessions.RevokeToken(context.Background(), db.New(other.Pool), "a-client-jti", exp); err != nil {
		t.Fatal(err)
	}
	got = s.until(t, func(ev event) bool { return ev.name == "revocation" && strings.Contains(ev.data, `"a-client-jti"`) })
	last := got[len(got)-1].id

	// Resume from the last event: the overlap again (harmless), then on.
	again := openStream(t, e, feed, last).until(t, caughtUp)
	if !has(t, again, "token_id", "a-client-jti") || has(t, again, "token_id", "old-jti") {
		t.Errorf("resumed from %s: %v", last, again)
	}

	// Four streams at once here (the first, s, the resumed one and one
	// more); a fifth is refused.
	fourth := openStream(t, e, feed, "")
	fourth.until(t, caughtUp)
	r := do(t, "GET", e.URL+"/revocations/events", nil, bearer(feed))
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	// Draining ends the streams at once, and refuses new ones.
	e.Drain()
	select {
	case <-fourth.ended:
	case <-time.After(2 * time.Second):
		t.Fatal("an open stream outlived the drain by 2s")
	}
	assertProblem(t, do(t, "GET", e.URL+"/revocations/events", nil, bearer(feed)), 503)
}

// A stream outlives the server's ReadTimeout and WriteTimeout (it clears
// the one and extends the other at every write, through every wrapper of
// the response writer) and sends a comment every heartbeat.
func TestRevocationStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.Options{FeedHeartbeat: 100 * time.Millisecond})
	srv := httptest.NewUnstartedServer(e.Handler)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 500*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(e.Drain) // before srv.Close, which waits for the stream
	feedToken, _, err := e.Tokens.Issue(token.Subject{ClientID: "cl_AAAAAAAAAAAAAAAAAAAAAA", Roles: []string{"resource-server"}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/revocations/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+feedToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /revocations/events = %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		if !sc.Scan() {
			t.Fatalf("the stream ended after %v (%d heartbeats): %v", time.Since(start), beats, sc.Err())
		}
		if strings.HasPrefix(sc.Text(), ":") {
			beats++
		}
	}
	if beats < 5 {
		t.Errorf("%d heartbeats in 1.5s at one per 100ms", beats)
	}
}
