// Package pglocal starts and stops a private PostgreSQL server from the
// PostgreSQL binaries installed on this machine, so rolegate works with no
// database set up.
//
// It is used by "rolegate serve" when DATABASE_URL is unset, and by the test
// helper that starts one cluster per test run.
package pglocal

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// superuser is the PostgreSQL role initdb creates; rolegate connects as it.
const superuser = "rolegate"

// defaultDatabase is created when Options.Database is empty.
const defaultDatabase = "rolegate"

// ErrNoBinaries is returned when no directory holding both initdb and
// postgres can be found. Its text is meant to be printed as one line.
var ErrNoBinaries = errors.New("pglocal: no PostgreSQL server binaries found: install PostgreSQL (for example apt-get install postgresql) or set DATABASE_URL")

// Options configures Start.
type Options struct {
	// Dir is the base directory for the cluster, e.g. "./.data"; it is
	// created if missing. The data directory is <Dir>/pg unless the
	// postgres OS user cannot reach it (see Server.DataDir).
	Dir string
	// Database is created if missing; default "rolegate".
	Database string
	// Logger receives progress and postgres's own output; nil discards.
	Logger *slog.Logger
	// Fsync keeps PostgreSQL's durability settings. Leave it false only for
	// throwaway test clusters: the server then runs with fsync,
	// synchronous_commit and full_page_writes off, and 400 connections
	// for the many servers of tests run in parallel.
	Fsync bool
	// Attach, when another process already runs the cluster in Dir, connects
	// to it instead of failing. The returned Server's Stop then leaves the
	// cluster running. For short commands such as "rolegate user add".
	Attach bool
	// Port, when not 0, is the port to listen on, rather than a free one;
	// for tests that restart a cluster at the same address.
	Port int
}

// Server is a running private PostgreSQL server started by Start. It
// supervises the postmaster: one that exits without Stop having asked (a
// crash, an operator's pg_ctl stop, the OOM killer) is started again on the
// same port and data directory, so that the URL stays good.
type Server struct {
	dir      string // absolute Options.Dir
	dataDir  string
	database string
	password string
	port     int
	log      *slog.Logger
	lock     *os.File // flock on <dir>/pglocal.lock, held until Stop
	attached bool     // started by another process: Stop leaves it running

	mu   sync.Mutex
	proc *child // the postmaster; the supervisor replaces it after a crash

	quit       chan struct{} // closed when Stop begins: no more restarts
	quitOnce   sync.Once
	supervised chan struct{} // closed when the supervisor has returned

	stopOnce sync.Once
	stopErr  error
}

// URL returns the postgres URL, including the password, of Options.Database,
// with sslmode=disable. Do not log it.
func (s *Server) URL() string { return s.AdminURL(s.database) }

// AdminURL returns the postgres URL, including the superuser password, of
// database db, with sslmode=disable. Do not log it.
func (s *Server) AdminURL(db string) string { return s.urlAt(s.port, db) }

func (s *Server) urlAt(port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     "127.0.0.1:" + strconv.Itoa(port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// DataDir returns the directory the cluster really lives in: <Dir>/pg, or
// a fallback under /var/lib/rolegate or os.TempDir() when running as root
// and the postgres OS user cannot reach <Dir>.
func (s *Server) DataDir() string { return s.dataDir }

// Start initialises the cluster if needed, clears state left by a crash,
// starts postgres as a child process listening on a free loopback port,
// waits until it accepts connections and creates Options.Database if it is
// missing. From then on it restarts postgres whenever it exits unasked
// (see Server). Call Stop to shut it down.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts)
}

// Stop ends the supervision, waiting for a restart in progress to finish
// or give up, then shuts the server down: SIGINT (fast shutdown) to the
// postmaster, a wait for it to exit bounded by ctx, then SIGQUIT and
// finally SIGKILL. It releases the directory lock. Calling it again returns
// the first result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.attached {
			return
		}
		s.endSupervision()
		if p := s.running(); p != nil {
			s.stopErr = p.stop(ctx)
		}
		// Release the lock only once postgres is gone, so that a new Start
		// on the same Dir never sees a live postmaster of ours.
		if s.lock != nil {
			s.lock.Close()
			s.lock = nil
		}
		s.log.Info("pglocal: PostgreSQL stopped", "data_dir", s.dataDir)
	})
	return s.stopErr
}

// endSupervision stops the restarting of the postmaster and returns once
// no restart is in progress: from then on s.proc stays as it is.
func (s *Server) endSupervision() {
	if s.quit == nil {
		return
	}
	s.quitOnce.Do(func() { close(s.quit) })
	<-s.supervised
}

// running returns the current postmaster.
func (s *Server) running() *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// FindBinaries returns the directory holding the initdb and postgres
// binaries: pg_config --bindir first, then the directories of postgres and
// initdb on PATH, then /usr/lib/postgresql/*/bin, highest version first.
func FindBinaries() (string, error) {
	var dirs []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
	}
	for _, name := range []string{"postgres", "initdb"} {
		if p, err := exec.LookPath(name); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versioned, func(a, b string) int {
		va, vb := binVersion(a), binVersion(b)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	dirs = append(dirs, versioned...)
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// binVersion parses the version out of /usr/lib/postgresql/<version>/bin;
// "9.6" < "10" holds as floats. Unparsable names sort last.
func binVersion(bin string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
