//go:build linux

package pglocal

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testLogger logs through t until the test ends; postgres output that
// arrives later (from a killed cluster's last backends) is dropped instead
// of panicking the test binary.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered before any Stop cleanup, so runs after it
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// reachableTempDir is a t.TempDir whose parent is opened for search: the
// testing package makes it 0700, which, as root, would keep the postgres
// OS user out and send the cluster to the /var/lib/rolegate fallback.
func reachableTempDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			t.Errorf("%s has no executable %s", dir, name)
		}
	}
	// pg_config, when present, has the first say.
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		out, err := exec.Command(pgConfig, "--bindir").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(out)); dir != want {
			t.Errorf("FindBinaries() = %s, want pg_config --bindir %s", dir, want)
		}
	}
}

func TestReachable(t *testing.T) {
	base := reachableTempDir(t)
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	const stranger, strangerGroup = 54321, 54321
	dirs := map[string]os.FileMode{"open": 0o755, "closed": 0o700, "group": 0o710}
	root := os.Geteuid() == 0
	if root {
		// Owned by a stranger whose owner bits lack x although other's have
		// it: the owner class alone decides. (Not as non-root: we could not
		// clean it up.)
		dirs["owneronly"] = 0o601
	}
	for dir, mode := range dirs {
		if err := os.MkdirAll(filepath.Join(base, dir, "leaf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(base, dir), mode); err != nil {
			t.Fatal(err)
		}
	}
	if root {
		if err := os.Chown(filepath.Join(base, "owneronly"), stranger, strangerGroup); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		path     string
		uid, gid uint32
		groups   []uint32
		want     bool
		rootOnly bool
	}{
		{name: "open parent", path: "open/leaf/pg", uid: stranger, gid: strangerGroup, want: true},
		{name: "0700 parent of someone else", path: "closed/leaf/pg", uid: stranger, gid: strangerGroup, want: false},
		{name: "0700 parent of our own", path: "closed/leaf/pg", uid: uid, gid: gid, want: true},
		{name: "0710 parent, primary group", path: "group/leaf/pg", uid: stranger, gid: gid, want: true},
		{name: "0710 parent, supplementary group", path: "group/leaf/pg", uid: stranger, gid: strangerGroup, groups: []uint32{1, gid}, want: true},
		{name: "0710 parent, other", path: "group/leaf/pg", uid: stranger, gid: strangerGroup, want: false},
		{name: "owner without x", path: "owneronly/leaf/pg", uid: stranger, gid: strangerGroup, want: false, rootOnly: true},
		{name: "other with x", path: "owneronly/leaf/pg", uid: stranger + 1, gid: strangerGroup + 1, want: true, rootOnly: true},
		{name: "root passes anything", path: "closed/leaf/pg", uid: 0, gid: 0, want: true},
		{name: "missing parent", path: "nope/leaf/pg", uid: stranger, gid: strangerGroup, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && !root {
				t.Skip("needs root to chown")
			}
			if got := reachable(filepath.Join(base, tt.path), tt.uid, tt.gid, tt.groups); got != tt.want {
				t.Errorf("reachable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPersistence starts a cluster, writes a row, restarts it on the same
// Dir and reads the row back. As root it uses a plain t.TempDir, whose 0700
// parent the postgres OS user cannot search, so it also runs the fallback.
func TestPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{Dir: dir, Database: "Role-Gate test", Logger: testLogger(t)}
	s := startServer(t, opts)
	if os.Geteuid() == 0 {
		if strings.HasPrefix(s.DataDir(), dir) {
			t.Errorf("DataDir %s: want a fallback outside %s", s.DataDir(), dir)
		}
		t.Cleanup(func() {
			s.Stop(context.Background())
			os.RemoveAll(s.DataDir())
		})
	} else if want := filepath.Join(dir, "pg"); s.DataDir() != want {
		t.Errorf("DataDir = %s, want %s", s.DataDir(), want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pg.password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pg.password: %v, %v; want mode 0600", fi, err)
	}
	if !strings.HasSuffix(s.URL(), "/Role-Gate%20test?sslmode=disable") {
		t.Errorf("URL does not name the database with sslmode=disable")
	}

	conn := connect(t, s.URL())
	var db string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil || db != opts.Database {
		t.Fatalf("current_database() = %q, %v", db, err)
	}
	mustExec(t, conn, "CREATE TABLE kv (k text PRIMARY KEY, v text)")
	mustExec(t, conn, "INSERT INTO kv VALUES ('answer', '42')")
	conn.Close(context.Background())

	t.Run("second Start on the same Dir is refused", func(t *testing.T) {
		_, err := Start(context.Background(), Options{Dir: dir})
		want := "another rolegate is using the embedded PostgreSQL in " + dir
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second Start: %v, want an error containing %q", err, want)
		}
	})

	stop(t, s)
	stop(t, s) // idempotent

	s2 := startServer(t, opts)
	if s2.DataDir() != s.DataDir() {
		t.Errorf("DataDir after restart = %s, want %s", s2.DataDir(), s.DataDir())
	}
	var v string
	if err := connect(t, s2.URL()).QueryRow(context.Background(), "SELECT v FROM kv WHERE k = 'answer'").Scan(&v); err != nil || v != "42" {
		t.Fatalf("row after restart: %q, %v", v, err)
	}
	stop(t, s2)
}

// TestParentKilled checks that when the process that started postgres is
// SIGKILLed, Pdeathsig makes postgres shut down, and the next Start works.
func TestParentKilled(t *testing.T) {
	if dir := os.Getenv("PGLOCAL_TEST_HELPER_DIR"); dir != "" {
		// The parent to be killed: start a server, report its PID, wait.
		s, err := Start(context.Background(), Options{Dir: dir})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s.running().cmd.Process.Pid)
		select {}
	}
	t.Parallel()
	dir := reachableTempDir(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestParentKilled$")
	helper.Env = append(os.Environ(), "PGLOCAL_TEST_HELPER_DIR="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper: %s", line)
	}
	if !alive(pid) || !isPostgres(pid) {
		t.Fatalf("PID %d is not a running postgres", pid)
	}
	t.Cleanup(func() { // should Pdeathsig fail, leave no postgres behind
		if alive(pid) && isPostgres(pid) {
			syscall.Kill(pid, syscall.SIGQUIT)
		}
	})
	helper.Process.Kill()
	helper.Wait()
	waitFor(t, func() bool { return !alive(pid) })
	s := startServer(t, Options{Dir: dir, Logger: testLogger(t)})
	mustExec(t, connect(t, s.URL()), "SELECT 1")
	stop(t, s)
}

// TestStaleState checks that Start recovers, with no manual clean-up, from
// what crashes leave behind in the data directory. The steps share one
// cluster, so they are not subtests: each server must outlive its step.
func TestStaleState(t *testing.T) {
	t.Parallel()
	// Fsync on: committed rows must survive the crash.
	opts := Options{Dir: filepath.Join(reachableTempDir(t), "data"), Logger: testLogger(t), Fsync: true}

	t.Log("step: half-made data directory from an interrupted initdb")
	if err := os.MkdirAll(filepath.Join(opts.Dir, "pg", "base"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, "pg", "junk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil { // as Start creates it
		t.Fatal(err)
	}
	s := startServer(t, opts)
	if want := filepath.Join(opts.Dir, "pg"); s.DataDir() != want {
		t.Fatalf("DataDir = %s, want %s", s.DataDir(), want)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, "pg", "junk")); err == nil {
		t.Error("the half-made data directory was not replaced")
	}
	if os.Geteuid() == 0 {
		// Dir must let the postgres OS user through, and nobody else.
		fi, err := os.Stat(opts.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o710 {
			t.Errorf("Dir mode = %v, want 0710", fi.Mode().Perm())
		}
	}
	// Commands that tighten Dir's modes ask this, to keep what the cluster needs.
	if got, want := GroupSearchable(opts.Dir), os.Geteuid() == 0; got != want {
		t.Errorf("GroupSearchable(Dir) = %v, want %v", got, want)
	}
	if GroupSearchable(filepath.Join(opts.Dir, "pg")) {
		t.Error("GroupSearchable(the data directory itself, 0700) = true, want false")
	}
	pidFile := filepath.Join(s.DataDir(), "postmaster.pid")

	t.Log("step: postmaster killed with SIGKILL, leaving a busy backend behind")
	mustExec(t, connect(t, s.URL()), "CREATE TABLE t (x int)")
	// A CPU-bound query never checks for postmaster death, so its backend
	// outlives the postmaster and keeps the old shared memory attached.
	busy := connect(t, s.URL())
	busyDone := make(chan error, 1)
	go func() {
		_, err := busy.Exec(context.Background(), "SELECT count(*) FROM generate_series(1, 1e12)")
		busyDone <- err
	}()
	waitFor(t, func() bool {
		var n int
		connect(t, s.URL()).QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%generate_series%' AND state = 'active' AND pid <> pg_backend_pid()").Scan(&n)
		return n > 0
	})
	// As if rolegate crashed too: nobody restarts the postmaster.
	s.endSupervision()
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.proc.done
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("postmaster.pid not left behind: %v", err)
	}
	s.Stop(context.Background()) // releases the lock, as the kernel would
	s = startServer(t, opts)
	select {
	case <-busyDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the busy backend outlived the restart")
	}
	mustExec(t, connect(t, s.URL()), "INSERT INTO t VALUES (1)")

	t.Log("step: orphaned postmaster still running")
	// As after a SIGKILLed rolegate: the lock and the supervisor are gone,
	// postgres is not.
	s.endSupervision()
	s.lock.Close()
	s.lock = nil
	old := s
	s = startServer(t, opts)
	select {
	case <-old.proc.done:
	default:
		t.Fatal("the orphaned postmaster is still running")
	}
	mustExec(t, connect(t, s.URL()), "INSERT INTO t VALUES (2)")
	stop(t, s)

	t.Log("step: postmaster.pid names a live process that is not postgres")
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	content := fmt.Sprintf("%d\n%s\n", sleep.Process.Pid, s.DataDir())
	if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, opts)
	var n int
	if err := connect(t, s.URL()).QueryRow(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows in t: %d, %v; want 2", n, err)
	}
	if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the unrelated process was signalled away: %v", err)
	}
	stop(t, s)
}

// TestRestartAfterExit checks that a postmaster that exits unasked, by a
// fast shutdown from outside or by a crash, is started again at the same
// URL with its data, and that Stop then leaves no postgres behind.
func TestRestartAfterExit(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Dir: reachableTempDir(t), Logger: testLogger(t)})
	url := s.URL()
	conn := connect(t, url)
	mustExec(t, conn, "CREATE TABLE kv (k text PRIMARY KEY, v text)")
	mustExec(t, conn, "INSERT INTO kv VALUES ('answer', '42')")
	conn.Close(context.Background())

	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		old := s.running()
		if err := old.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		<-old.done
		gone := time.Now()
		waitFor(t, func() bool { return s.running() != old })
		if s.URL() != url {
			t.Errorf("after %v the URL changed", sig)
		}
		var v string
		if err := connect(t, url).QueryRow(context.Background(), "SELECT v FROM kv WHERE k = 'answer'").Scan(&v); err != nil || v != "42" {
			t.Fatalf("after %v: row = %q, %v", sig, v, err)
		}
		// The second exit comes within stableRun of the first restart:
		// the supervisor pauses before it starts a crash loop's next round.
		if back := time.Since(gone); i == 1 && back < firstRestartWait {
			t.Errorf("restarted %v after an exit soon after the last restart, want a pause of at least %v", back, firstRestartWait)
		}
		t.Logf("%v: PostgreSQL answered again %v after its postmaster exited", sig, time.Since(gone).Round(time.Millisecond))
	}
	dataDir := s.DataDir()
	stop(t, s)
	if left := processesIn(dataDir); len(left) > 0 {
		t.Errorf("postgres processes %v outlived Stop", left)
	}
}

// TestStopDuringRestart checks that Stop, called while the supervisor is
// restarting a crashed postmaster, returns, leaves no postmaster running
// and releases the directory for the next Start.
func TestStopDuringRestart(t *testing.T) {
	t.Parallel()
	opts := Options{Dir: reachableTempDir(t), Logger: testLogger(t)}
	s := startServer(t, opts)
	dataDir := s.DataDir()
	old := s.running()
	if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.done
	time.Sleep(50 * time.Millisecond) // the restart is under way
	stop(t, s)
	// A backend of the killed postmaster may take a moment to notice.
	waitFor(t, func() bool { return len(processesIn(dataDir)) == 0 })
	s = startServer(t, opts)
	mustExec(t, connect(t, s.URL()), "SELECT 1")
	stop(t, s)
}
