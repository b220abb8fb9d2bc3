package pglocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	readyTimeout  = 60 * time.Second // for postgres to accept connections
	orphanTimeout = 30 * time.Second // for an orphaned postmaster's fast shutdown
	portAttempts  = 4                // starts tried when the chosen port is taken
	tailLines     = 20               // postgres output lines kept for error messages
)

func start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("pglocal: Options.Dir is empty")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := opts.Database
	if db == "" {
		db = defaultDatabase
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	lock, err := lockDir(dir)
	if errors.Is(err, errLocked) && opts.Attach {
		return attach(ctx, dir, db, log)
	}
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, database: db, log: log, lock: lock}
	if err := s.start(ctx, bin, opts.Fsync, opts.Port); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, bin string, fsync bool, port int) error {
	u, err := serverUser()
	if err != nil {
		return err
	}
	if s.dataDir, err = chooseDataDir(s.dir, u, s.log); err != nil {
		return err
	}
	if s.password, err = ensureCluster(ctx, bin, s.dir, s.dataDir, u, fsync, s.log); err != nil {
		return err
	}
	if s.proc, s.port, err = s.launch(ctx, bin, u, fsync, port); err != nil {
		return err
	}
	s.quit, s.supervised = make(chan struct{}), make(chan struct{})
	go s.supervise(bin, u, fsync)
	return nil
}

// launch clears what a crash left in the data directory, runs a postmaster
// on port (a free one when 0), waits until it accepts connections, creates
// the database if missing and records the port for other commands. It
// returns the postmaster and its port.
func (s *Server) launch(ctx context.Context, bin string, u *osUser, fsync bool, port int) (*child, int, error) {
	if err := clearStale(ctx, s.dataDir, s.log); err != nil {
		return nil, 0, err
	}
	var (
		proc *child
		conn *pgx.Conn
		err  error
	)
	for attempt := 1; ; attempt++ {
		listen := port
		if listen == 0 {
			if listen, err = freePort(); err != nil {
				return nil, 0, err
			}
		}
		if proc, err = startPostgres(bin, s.dataDir, listen, u, fsync, s.log); err != nil {
			return nil, 0, err
		}
		conn, err = proc.waitReady(ctx, s.urlAt(listen, "postgres"))
		if err == nil {
			port = listen
			break
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		proc.stop(stopCtx)
		cancel()
		// Another process can grab the port between our probe and postgres's bind.
		if attempt == portAttempts || port != 0 || !proc.tail.contains("Address already in use") {
			return nil, 0, err
		}
		s.log.Debug("pglocal: port taken, retrying", "port", listen)
	}
	defer conn.Close(context.Background())
	if err := createDatabase(ctx, conn, s.database); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		proc.stop(stopCtx)
		cancel()
		return nil, 0, err
	}
	// Tell other rolegate commands (Options.Attach) where to find us.
	if err := os.WriteFile(filepath.Join(s.dir, portFile), []byte(strconv.Itoa(port)), 0o600); err != nil {
		s.log.Warn("pglocal: cannot record the port for other commands", "err", err)
	}
	s.log.Info("pglocal: PostgreSQL started", "data_dir", s.dataDir, "port", port, "pid", proc.cmd.Process.Pid)
	return proc, port, nil
}

// Restart backoff: the first restart is immediate, each failed one doubles
// the wait before the next, up to maxRestartWait; so does each exit within
// stableRun of the last restart.
const (
	firstRestartWait = 250 * time.Millisecond
	maxRestartWait   = 4 * time.Second
	stableRun        = 10 * time.Second
)

// supervise starts the postmaster again, on the same port and data
// directory, each time it exits unasked, until Stop closes s.quit; a
// restart in progress is then abandoned (its postmaster stopped) before
// supervise returns.
func (s *Server) supervise(bin string, u *osUser, fsync bool) {
	defer close(s.supervised)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	var pause time.Duration // before the next restart, while restarts do not last
	var up time.Time        // of the last restart; zero before the first
	for {
		proc := s.running()
		select {
		case <-s.quit:
			return
		case <-proc.done:
		}
		select {
		case <-s.quit:
			return // Stop began as it exited
		default:
		}
		// A postmaster that keeps exiting soon after it starts is started
		// again ever more slowly, rather than in a tight loop.
		if !up.IsZero() && time.Since(up) < stableRun {
			pause = min(max(2*pause, firstRestartWait), maxRestartWait)
		} else {
			pause = 0
		}
		s.log.Warn("pglocal: PostgreSQL exited unasked; restarting it", "err", proc.err, "data_dir", s.dataDir, "port", s.port, "in", pause.String())
		if pause > 0 {
			select {
			case <-s.quit:
				return
			case <-time.After(pause):
			}
		}
		for wait := firstRestartWait; ; wait = min(2*wait, maxRestartWait) {
			next, _, err := s.launch(ctx, bin, u, fsync, s.port)
			if err == nil {
				s.mu.Lock()
				s.proc = next
				s.mu.Unlock()
				up = time.Now()
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("pglocal: restarting PostgreSQL failed; trying again", "err", err, "in", wait.String())
			select {
			case <-s.quit:
				return
			case <-time.After(wait):
			}
		}
	}
}

// lockDir takes an exclusive flock on <dir>/pglocal.lock so two processes
// never run two postmasters on one cluster. The kernel drops it if we die.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "pglocal.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pglocal: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another rolegate is using the embedded PostgreSQL in %s; stop it or set DATABASE_URL", errLocked, dir)
		}
		return nil, fmt.Errorf("pglocal: lock %s: %w", path, err)
	}
	return f, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func createDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("pglocal: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		err = nil // duplicate_database: a concurrent creator won
	}
	if err != nil {
		return fmt.Errorf("pglocal: create database %q: %w", name, err)
	}
	return nil
}

// child is a running postmaster.
type child struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the postmaster has exited
	err      error         // cmd.Wait's result, set before done is closed
	logsDone chan struct{} // closed when its output has been read to EOF
	tail     *tail
}

// startPostgres runs postgres as our direct child, in its own process
// group so a terminal Ctrl-C reaches only us and we stop postgres last.
func startPostgres(bin, dataDir string, port int, u *osUser, fsync bool, log *slog.Logger) (*child, error) {
	args := []string{"-D", dataDir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="}
	if !fsync {
		// A throwaway test cluster: its tests run many servers, each with
		// pools of their own, in parallel.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=400")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = "/" // our working directory may be closed to the postgres user
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If we die, even by SIGKILL, postgres does a fast shutdown.
		Pdeathsig:  syscall.SIGINT,
		Credential: u.cred(),
	}
	// An *os.File rather than an io.Writer, so cmd.Wait returns when the
	// postmaster exits, not when its last orphaned backend closes stderr.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pglocal: postgres: %w", err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	c := &child{cmd: cmd, done: make(chan struct{}), logsDone: make(chan struct{}), tail: &tail{}}
	go c.readLogs(r, log)

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not
		// the process: keep this goroutine on its own thread, alive in
		// cmd.Wait for the whole life of postgres. The thread is never
		// unlocked, so it ends with the goroutine.
		runtime.LockOSThread()
		err := cmd.Start()
		w.Close() // postgres holds its own copy
		started <- err
		if err != nil {
			return
		}
		c.err = cmd.Wait() // an unasked exit is the supervisor's to report
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("pglocal: start postgres: %w", err)
	}
	return c, nil
}

// readLogs forwards postgres's output to log, at Warn for FATAL and PANIC
// lines, and keeps the last lines for error messages.
func (c *child) readLogs(r *os.File, log *slog.Logger) {
	defer close(c.logsDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.tail.add(line)
		level := slog.LevelDebug
		if (strings.Contains(line, "FATAL") || strings.Contains(line, "PANIC")) && !routine(line) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "postgres", "line", line)
	}
	// Never let postgres block on a full pipe, even after an overlong line.
	io.Copy(io.Discard, r)
}

// routine reports whether a FATAL line is the expected effect of our own
// readiness polling or shutdown, not worth a warning on every start and stop.
func routine(line string) bool {
	for _, msg := range []string{
		"the database system is starting up",
		"the database system is shutting down",
		"terminating connection due to administrator command",
	} {
		if strings.Contains(line, msg) {
			return true
		}
	}
	return false
}

// waitReady polls until postgres accepts a connection, which it returns.
func (c *child) waitReady(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(attempt, url)
		cancelAttempt()
		if err == nil {
			return conn, nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
			// invalid_authorization_specification / invalid_password: the
			// password file does not match the cluster; retrying cannot help.
			return nil, fmt.Errorf("pglocal: postgres rejected the password in pg.password: %w", err)
		}
		select {
		case <-c.done:
			// Give the log reader a moment to collect the last words.
			select {
			case <-c.logsDone:
			case <-time.After(2 * time.Second):
			}
			return nil, fmt.Errorf("pglocal: postgres exited during startup (%w); its last output:\n%s", c.err, c.tail.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("pglocal: postgres not accepting connections: %w (last attempt: %v); its last output:\n%s", ctx.Err(), err, c.tail.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop asks for a fast shutdown and waits for it, bounded by ctx; then
// immediate shutdown, then SIGKILL to the whole process group. A postmaster
// that had exited already needs nothing.
func (c *child) stop(ctx context.Context) error {
	select {
	case <-c.done:
		return nil // it had exited already (and was not restarted)
	default:
	}
	p := c.cmd.Process
	if err := p.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pglocal: stop: %w", err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("pglocal: postgres exited: %w", c.err)
		}
		return nil
	case <-ctx.Done():
	}
	p.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
		return fmt.Errorf("pglocal: stop: fast shutdown unfinished (%w); used immediate shutdown", ctx.Err())
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("pglocal: stop: postgres did not shut down (%w); killed it", ctx.Err())
}

// tail keeps the last tailLines lines written to it.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *tail) contains(s string) bool {
	return strings.Contains(t.String(), s)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// clearStale makes a data directory left by a crash startable again. A
// postmaster.pid naming a live postgres is an orphan of ours (we hold the
// lock, so no other rolegate runs it): typically the previous rolegate was
// killed and its postgres is still in the fast shutdown Pdeathsig began.
// Stop it. A pid file naming a dead or unrelated process goes, since
// postgres would refuse to start while that PID is alive.
func clearStale(ctx context.Context, dataDir string, log *slog.Logger) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 && alive(pid) && isPostgres(pid) {
		log.Info("pglocal: stopping an orphaned postgres", "pid", pid, "data_dir", dataDir)
		if err := terminate(ctx, []int{pid}, syscall.SIGINT, orphanTimeout); err != nil {
			return err
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pglocal: remove stale pid file: %w", err)
	}
	// A SIGKILLed postmaster leaves its backends running for a moment (or,
	// mid-query, longer); they still attach the old shared memory, and a
	// new postmaster would refuse to start. They have no postmaster left,
	// so nothing they do matters: end them.
	if left := processesIn(dataDir); len(left) > 0 {
		log.Info("pglocal: ending leftover postgres processes", "count", len(left), "data_dir", dataDir)
		return terminate(ctx, left, syscall.SIGQUIT, 5*time.Second)
	}
	return nil
}

// terminate sends sig to pids and waits up to wait for them to exit, then
// escalates to SIGQUIT and SIGKILL.
func terminate(ctx context.Context, pids []int, sig syscall.Signal, wait time.Duration) error {
	for _, next := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{sig, wait}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		for _, pid := range pids {
			syscall.Kill(pid, next.sig)
		}
		deadline := time.Now().Add(next.wait)
		for {
			pids = liveOnly(pids)
			if len(pids) == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("pglocal: waiting for old postgres processes %v: %w", pids, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("pglocal: old postgres processes %v do not exit", pids)
}

func liveOnly(pids []int) []int {
	live := pids[:0]
	for _, pid := range pids {
		if alive(pid) {
			live = append(live, pid)
		}
	}
	return live
}

// alive reports whether pid exists and is not a zombie (whose parent, if
// not us, may never reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain ") ".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// isPostgres reports whether pid runs postgres: a postmaster keeps its
// command line, backends retitle theirs "postgres: ...".
func isPostgres(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	if strings.HasPrefix(argv0, "postgres:") {
		return true
	}
	base := filepath.Base(argv0)
	return base == "postgres" || base == "postmaster"
}

// processesIn lists the postgres processes working in dataDir: every
// postgres process chdirs to its data directory.
func processesIn(dataDir string) []int {
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == want && isPostgres(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// errLocked reports that another process runs the cluster in a directory.
var errLocked = errors.New("pglocal: locked")

// portFile, in Options.Dir, holds the port of the running cluster.
const portFile = "pglocal.port"

// attach connects to the cluster another process runs in dir, which holds
// the directory lock and wrote its port there when it started.
func attach(ctx context.Context, dir, db string, log *slog.Logger) (*Server, error) {
	portText, err := os.ReadFile(filepath.Join(dir, portFile))
	if err != nil {
		return nil, fmt.Errorf("pglocal: another process runs the cluster in %s but its port is unknown: %w", dir, err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(portText)))
	if err != nil {
		return nil, fmt.Errorf("pglocal: %s: not a port number", portFile)
	}
	pw, err := readPassword(filepath.Join(dir, "pg.password"))
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, database: db, password: pw, port: port, log: log, attached: true}
	conn, err := pgx.Connect(ctx, s.AdminURL(db))
	if err != nil {
		return nil, fmt.Errorf("pglocal: the cluster in %s does not answer: %w", dir, err)
	}
	conn.Close(ctx)
	log.Debug("pglocal: attached to the running cluster", "dir", dir, "port", port)
	return s, nil
}

// ProcessesIn returns the ids of the postgres processes of the cluster in
// dataDir now, whoever runs it: the postmaster and every process it
// started. Tests freeze them (SIGSTOP) to stand for a database that hangs.
func ProcessesIn(dataDir string) []int { return processesIn(dataDir) }
