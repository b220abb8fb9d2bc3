package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/pglocal"
)

// The database (at DATABASE_URL) stops for 5 s under steady load and comes
// back at the same address: token-only requests answer 200 throughout,
// database requests 503 with Retry-After (never a 500, never a hang), both
// work again soon after the database returns without a restart, and every
// note acknowledged with 201 is there afterwards.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	pg, err := pglocal.Start(ctx, pglocal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPG(t, pg) })
	u, err := url.Parse(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	p := startProcess(t, map[string]string{
		"DATABASE_URL": pg.URL(), "ROLEGATE_MASTER_KEY": masterKey, "ROLEGATE_ADMIN_PASSWORD": "first admin password",
	})
	waitReady(t, p.addr, 60*time.Second, p.logs)
	tok := loginOK(t, p.addr, "admin@localhost", "first admin password")

	// A client that gives up after 5 s: a hang is a failure.
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string) (int, http.Header, string, error) {
		req, _ := http.NewRequest(method, "http://"+p.addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), err
	}

	var mu sync.Mutex
	var acked []string // ids of notes answered 201
	var failures []string
	counts := map[string]int{}
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	count := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		counts[what]++
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	running := func(body func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				body()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	// Token only.
	running(func() {
		code, _, body, err := do("GET", "/identify/me", "")
		if err != nil || code != http.StatusOK {
			fail("GET /identify/me = %d %s %v", code, body, err)
		}
		count("me")
	})
	n := 0
	var slowest time.Duration // of the 503s
	// A write.
	running(func() {
		n++
		start := time.Now()
		code, h, body, err := do("POST", "/notes", fmt.Sprintf(`{"document_src":"outage","title":"note %d","body":"x"}`, n))
		switch {
		case err != nil:
			fail("POST /notes: %v", err)
		case code == http.StatusCreated:
			var note struct{ ID json.Number }
			if json.Unmarshal([]byte(body), &note) != nil {
				fail("POST /notes = 201 %s", body)
			}
			mu.Lock()
			acked = append(acked, note.ID.String())
			mu.Unlock()
			count("created")
		case code == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
			count("unavailable")
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		default:
			fail("POST /notes = %d %s", code, body)
		}
	})

	time.Sleep(500 * time.Millisecond)
	stopPG(t, pg)
	time.Sleep(5 * time.Second)
	if pg, err = pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: port}); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// Both kinds of request work again without a restart.
	mu.Lock()
	before := counts["created"]
	mu.Unlock()
	for {
		mu.Lock()
		after := counts["created"]
		mu.Unlock()
		if after > before {
			break
		}
		if time.Since(back) > 30*time.Second {
			t.Fatalf("no note created within 30 s of the database's return; logs:\n%s", p.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("writes work again %v after the database returned", time.Since(back).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	waitReady(t, p.addr, 30*time.Second, p.logs)

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("failed requests, e.g.:\n%s", strings.Join(failures, "\n"))
	}
	if counts["unavailable"] == 0 {
		t.Errorf("no write met the outage: %v", counts)
	}
	for _, id := range acked {
		if code, _, body, err := do("GET", "/notes/"+id, ""); err != nil || code != http.StatusOK {
			t.Errorf("note %s, acknowledged with 201: GET = %d %s %v", id, code, body, err)
		}
	}
	t.Logf("requests: %v; the slowest 503 took %v", counts, slowest.Round(time.Millisecond))
}

func stopPG(t *testing.T, pg *pglocal.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pg.Stop(ctx); err != nil {
		t.Errorf("stopping PostgreSQL: %v", err)
	}
}
