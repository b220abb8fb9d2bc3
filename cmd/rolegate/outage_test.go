package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	pg, p := startWithPrivateCluster(t, dir)
	u, err := url.Parse(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	l := startLoad(t, p)
	time.Sleep(500 * time.Millisecond)
	stopPG(t, pg)
	time.Sleep(5 * time.Second)
	if pg, err = pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: port}); err != nil {
		t.Fatal(err)
	}
	l.recovered(t, 2*time.Second)
	l.finish(t)
}

// The embedded cluster's postmaster is shut down from outside (SIGINT, a
// fast shutdown, as an operator's pg_ctl stop -m fast would) under steady
// load: rolegate's supervisor starts it again at the same address, and
// meanwhile token-only requests answer 200, database requests 201 or 503
// with Retry-After, and no acknowledged note is lost. Then the cluster
// hangs (SIGSTOP) for 5 s, with the same outcome, database requests
// answered 503 after ROLEGATE_DB_TIMEOUT.
func TestEmbeddedDatabaseOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// As root, let the postgres OS user reach the data directory, so that
	// the cluster lives there and goes with it.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, map[string]string{"ROLEGATE_DATA_DIR": dir, "DATABASE_URL": "", "ROLEGATE_ADMIN_PASSWORD": "first admin password"})
	waitReady(t, p.addr, 90*time.Second, p.logs)
	var dataDir string
	for _, l := range p.logs.logLines(t) {
		if l["msg"] == "embedded PostgreSQL started" {
			dataDir, _ = l["data_dir"].(string)
		}
	}
	if dataDir == "" {
		t.Fatalf("the data directory of the embedded cluster is not logged:\n%s", p.logs)
	}
	l := startLoad(t, p)
	time.Sleep(500 * time.Millisecond)
	pid, err := postmasterPID(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	l.next(t, "unavailable")
	l.next(t, "created")
	t.Logf("writes failed and worked again within %v of the postmaster's shutdown", time.Since(down).Round(time.Millisecond))
	if !eventually(func() bool { return countLogs(t, p.logs, "pglocal: PostgreSQL exited unasked; restarting it") == 1 }) {
		t.Errorf("the supervisor did not log the restart:\n%s", p.logs)
	}
	if again, err := postmasterPID(dataDir); err != nil || again == pid {
		t.Errorf("postmaster after the restart: %d, %v; want a new one", again, err)
	}

	// Then the restarted cluster hangs for 5 s, and resumes.
	time.Sleep(300 * time.Millisecond)
	frozen := freeze(t, dataDir)
	time.Sleep(5 * time.Second)
	thaw(frozen)
	l.recovered(t, 2*time.Second)
	if slowest := l.finish(t); slowest > 3*time.Second {
		t.Errorf("the slowest 503 took %v, want about ROLEGATE_DB_TIMEOUT (1s)", slowest)
	}
}

// The database (at DATABASE_URL) hangs for 5 s under steady load: every
// process of its cluster is stopped with SIGSTOP, so connections stay open
// and nothing answers. Token-only requests answer 200 throughout; database
// requests answer 503 with Retry-After after ROLEGATE_DB_TIMEOUT rather
// than waiting for the database; all works again once it resumes, and no
// acknowledged note is lost.
func TestDatabaseHang(t *testing.T) {
	t.Parallel()
	pg, p := startWithPrivateCluster(t, t.TempDir())
	l := startLoad(t, p)
	time.Sleep(500 * time.Millisecond)
	frozen := freeze(t, pg.DataDir())
	time.Sleep(5 * time.Second)
	thaw(frozen)
	l.recovered(t, 2*time.Second)
	// ROLEGATE_DB_TIMEOUT is 1s: a 503 comes after about that, where
	// without the bound it came only when the database resumed, 5 s on.
	if slowest := l.finish(t); slowest > 3*time.Second {
		t.Errorf("the slowest 503 took %v, want about ROLEGATE_DB_TIMEOUT (1s)", slowest)
	}
}

// startWithPrivateCluster starts a PostgreSQL cluster of the test's own in
// dir, which the test may stop or freeze, and a rolegate process on it
// through DATABASE_URL, ready, with the first administrator's password
// "first admin password".
func startWithPrivateCluster(t *testing.T, dir string) (*pglocal.Server, *process) {
	t.Helper()
	pg, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPG(t, pg) })
	p := startProcess(t, map[string]string{
		"DATABASE_URL": pg.URL(), "ROLEGATE_MASTER_KEY": masterKey, "ROLEGATE_ADMIN_PASSWORD": "first admin password",
	})
	waitReady(t, p.addr, 60*time.Second, p.logs)
	return pg, p
}

func stopPG(t *testing.T, pg *pglocal.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pg.Stop(ctx); err != nil {
		t.Errorf("stopping PostgreSQL: %v", err)
	}
}

// postmasterPID reads the postmaster's process id from its data directory.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// freeze stops every process of the cluster in dataDir with SIGSTOP and
// returns them; the test's end resumes them should it fail before thaw.
// The postmaster goes first, so that it forks no backend the list misses.
func freeze(t *testing.T, dataDir string) []int {
	t.Helper()
	pid, err := postmasterPID(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	frozen := []int{pid}
	t.Cleanup(func() { thaw(frozen) }) // before stopPG, which was registered earlier
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pglocal.ProcessesIn(dataDir) {
		if pid != frozen[0] {
			frozen = append(frozen, pid)
			syscall.Kill(pid, syscall.SIGSTOP)
		}
	}
	return frozen
}

func thaw(pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGCONT)
	}
}

// load is steady traffic against a rolegate replica as the first
// administrator: one client reading /identify/me, which needs only the
// token, and one creating notes, which needs the database. A client gives
// up after 5 s, so a hang counts as a failure.
type load struct {
	p      *process
	tok    string
	client *http.Client

	mu       sync.Mutex
	acked    []string // ids of notes answered 201
	failures []string
	counts   map[string]int
	slowest  time.Duration // of the 503s

	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(t *testing.T, p *process) *load {
	t.Helper()
	l := &load{
		p:      p,
		tok:    loginOK(t, p.addr, "admin@localhost", "first admin password"),
		client: &http.Client{Timeout: 5 * time.Second},
		counts: map[string]int{},
		stop:   make(chan struct{}),
	}
	t.Cleanup(l.end)
	l.run(func() {
		code, _, body, err := l.do("GET", "/identify/me", "")
		if err != nil || code != http.StatusOK {
			l.fail("GET /identify/me = %d %s %v", code, body, err)
		}
		l.count("me")
	})
	n := 0
	l.run(func() {
		n++
		start := time.Now()
		code, h, body, err := l.do("POST", "/notes", fmt.Sprintf(`{"document_src":"outage","title":"note %d","body":"x"}`, n))
		switch {
		case err != nil:
			l.fail("POST /notes: %v", err)
		case code == http.StatusCreated:
			var note struct{ ID json.Number }
			if json.Unmarshal([]byte(body), &note) != nil {
				l.fail("POST /notes = 201 %s", body)
			}
			l.mu.Lock()
			l.acked = append(l.acked, note.ID.String())
			l.mu.Unlock()
			l.count("created")
		case code == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
			l.count("unavailable")
			l.mu.Lock()
			l.slowest = max(l.slowest, time.Since(start))
			l.mu.Unlock()
		default:
			l.fail("POST /notes = %d %s", code, body)
		}
	})
	return l
}

// run calls body over and over until the load ends.
func (l *load) run(body func()) {
	l.wg.Go(func() {
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			body()
			time.Sleep(2 * time.Millisecond)
		}
	})
}

func (l *load) do(method, path, body string) (int, http.Header, string, error) {
	req, _ := http.NewRequest(method, "http://"+l.p.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

func (l *load) count(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[what]++
}

// next waits until the load counts one more of what ("created",
// "unavailable") and returns how long that took; it fails the test after
// 30 s.
func (l *load) next(t *testing.T, what string) time.Duration {
	t.Helper()
	start := time.Now()
	l.mu.Lock()
	before := l.counts[what]
	l.mu.Unlock()
	for {
		l.mu.Lock()
		after := l.counts[what]
		l.mu.Unlock()
		if after > before {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no request counted %q within 30 s; logs:\n%s", what, l.p.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recovered fails unless a note is created within limit (2 s, as issue
// #13 asks) of the database's return.
func (l *load) recovered(t *testing.T, limit time.Duration) {
	t.Helper()
	took := l.next(t, "created")
	t.Logf("writes work again %v after the database returned", took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("writes worked again %v after the database returned, want within %v", took.Round(time.Millisecond), limit)
	}
}

// end stops the load and waits for its requests in flight.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// finish ends the load, waits for the replica to be ready, and checks that
// no request failed, that writes met the outage, and that every note
// acknowledged is there. It returns the time the slowest 503 took.
func (l *load) finish(t *testing.T) time.Duration {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	l.end()
	waitReady(t, l.p.addr, 30*time.Second, l.p.logs)

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("failed requests, e.g.:\n%s", strings.Join(l.failures, "\n"))
	}
	if l.counts["unavailable"] == 0 {
		t.Errorf("no write met the outage: %v", l.counts)
	}
	for _, id := range l.acked {
		if code, _, body, err := l.do("GET", "/notes/"+id, ""); err != nil || code != http.StatusOK {
			t.Errorf("note %s, acknowledged with 201: GET = %d %s %v", id, code, body, err)
		}
	}
	t.Logf("requests: %v; the slowest 503 took %v", l.counts, l.slowest.Round(time.Millisecond))
	return l.slowest
}
