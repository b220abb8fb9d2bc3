package sessions_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Prune deletes sessions dead for a day, with their refresh tokens, and
// revocations no token outlived; live sessions stay.
func TestPrune(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := apitest.New(t, apitest.Options{Now: func() time.Time { return clock() }})
	u := e.CreateUser(t, "prune@example.com", "user")
	ctx := t.Context()
	for range 3 {
		e.Login(t, u)
	}
	var sid string
	if err := e.Pool.QueryRow(ctx, "SELECT id FROM sessions LIMIT 1").Scan(&sid); err != nil {
		t.Fatal(err)
	}
	if err := e.Sessions.End(ctx, sid); err != nil {
		t.Fatal(err)
	}
	count := func(table string) int {
		var n int
		if err := e.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := e.Sessions.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if s, r := count("sessions"), count("revocations"); s != 3 || r != 1 {
		t.Fatalf("right away: %d sessions, %d revocations; want all kept", s, r)
	}
	now = now.Add(25 * time.Hour)
	if err := e.Sessions.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if s, tok, r := count("sessions"), count("refresh_tokens"), count("revocations"); s != 2 || tok != 2 || r != 0 {
		t.Errorf("a day later: %d sessions, %d refresh tokens, %d revocations; want 2, 2, 0", s, tok, r)
	}
	now = now.Add(8 * 24 * time.Hour) // idle past ROLEGATE_REFRESH_TOKEN_TTL and a day
	if err := e.Sessions.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if s := count("sessions"); s != 0 {
		t.Errorf("idle for 9 days: %d sessions left", s)
	}
}

// A session started under a browser session (a code exchange) ends with
// it, and none starts under one that has ended: a code issued before a
// logout cannot sign the person back in after it.
func TestStartUnderBrowserSession(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "child@example.com", "user")
	ctx := t.Context()
	q := db.New(e.Pool)
	br, _, err := e.Sessions.StartBrowser(ctx, q, u.ID, sessions.Client{})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err := e.Sessions.Start(ctx, q, u.ID, sessions.Client{ID: "cl_app", Parent: br.ID}, nil)
	if err != nil {
		t.Fatalf("start under a live browser session: %v", err)
	}
	if err := e.Sessions.End(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	var ended int
	if err := e.Pool.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE id = ANY($1::uuid[]) AND ended_at IS NOT NULL",
		[]string{br.ID, child}).Scan(&ended); err != nil || ended != 2 {
		t.Fatalf("%d of the browser session and its child ended (%v), want both", ended, err)
	}
	if _, _, err := e.Sessions.Start(ctx, q, u.ID, sessions.Client{ID: "cl_app", Parent: br.ID}, nil); !errors.Is(err, sessions.ErrParentEnded) {
		t.Errorf("start under an ended browser session: %v, want ErrParentEnded", err)
	}
}
