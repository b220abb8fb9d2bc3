package pglocal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// osUser is the OS account initdb and postgres run as when rolegate runs as
// root. A nil *osUser means "the current user".
type osUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// serverUser returns the account to run PostgreSQL as: nil (ourselves)
// unless we are root, which PostgreSQL refuses to run as.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root, which PostgreSQL refuses, and there is no \"postgres\" OS user to run it as (create one, run rolegate as another user, or set DATABASE_URL): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pglocal: postgres OS user: %w", err)
	}
	ou := &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("pglocal: groups of OS user postgres: %w", err)
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			ou.groups = append(ou.groups, uint32(g))
		}
	}
	return ou, nil
}

// cred is the SysProcAttr credential for u; nil runs as ourselves.
func (u *osUser) cred() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}
}

// chown gives path to u; a no-op when running as ourselves.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Lchown(path, int(u.uid), int(u.gid))
}

// reachable reports whether a process with uid, primary gid and
// supplementary groups may search every directory above path, which it
// needs in order to open path at all. It follows the kernel's rule that only
// the first matching class (owner, group, other) counts; ACLs are ignored.
func reachable(path string, uid, gid uint32, groups []uint32) bool {
	if uid == 0 {
		return true // CAP_DAC_READ_SEARCH
	}
	for d := filepath.Dir(filepath.Clean(path)); ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return false
		}
		if !canSearch(&st, uid, gid, groups) {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func canSearch(st *syscall.Stat_t, uid, gid uint32, groups []uint32) bool {
	switch {
	case st.Uid == uid:
		return st.Mode&0o100 != 0
	case st.Gid == gid || slices.Contains(groups, st.Gid):
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}

// chooseDataDir returns where the cluster lives: <dir>/pg, unless u (the
// postgres OS user when we are root) cannot reach it, in which case a
// directory derived from dir under /var/lib/rolegate or os.TempDir().
func chooseDataDir(dir string, u *osUser, log *slog.Logger) (string, error) {
	primary := filepath.Join(dir, "pg")
	if u == nil {
		return primary, nil
	}
	ok := func(p string) bool { return reachable(p, u.uid, u.gid, u.groups) }
	if !ok(primary) && ok(dir) {
		if err := openForSearch(dir, u); err != nil {
			return "", err
		}
	}
	if ok(primary) {
		return primary, nil
	}
	sum := sha256.Sum256([]byte(dir))
	name := fallbackName(dir) + "-" + hex.EncodeToString(sum[:])[:12]
	for _, cand := range []string{
		filepath.Join("/var/lib/rolegate", name),
		filepath.Join(os.TempDir(), "rolegate-"+name),
	} {
		if err := mkdirSearchable(filepath.Dir(cand)); err != nil || !ok(cand) {
			continue
		}
		log.Info("pglocal: the postgres OS user cannot reach the data directory; the cluster lives elsewhere",
			"dir", dir, "data_dir", cand)
		return cand, nil
	}
	return "", fmt.Errorf("pglocal: OS user postgres cannot reach %s and no fallback directory is usable", primary)
}

// mkdirSearchable creates dir, if missing, with mode 0755 whatever the
// umask: it only holds the postgres user's own 0700 cluster directories,
// which that user must be able to reach.
func mkdirSearchable(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// openForSearch lets the postgres group traverse dir when dir is a private
// (0700) directory of ours, the way Start creates it: group postgres, mode
// 0710. Its files stay private to us.
func openForSearch(dir string, u *osUser) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return nil // not ours to change; the fallback applies
	}
	if err := os.Chown(dir, -1, int(u.gid)); err != nil {
		return fmt.Errorf("pglocal: chgrp %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("pglocal: chmod %s: %w", dir, err)
	}
	return nil
}

// GroupSearchable reports whether dir is set up the way Start sets up a data
// directory for a cluster it runs as the postgres OS user (when rolegate
// runs as root): ours, in the postgres user's group, with the group's
// search permission. A cluster running there needs that permission, since
// PostgreSQL opens some of its files (global/pg_control) by their absolute
// path: whoever tightens the directory's modes must keep it.
func GroupSearchable(dir string) bool {
	u, err := serverUser()
	if err != nil || u == nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false
	}
	return int(st.Uid) == os.Geteuid() && st.Gid == u.gid && st.Mode&0o010 != 0
}

// fallbackName is a readable, path-safe label for dir.
func fallbackName(dir string) string {
	name := strings.TrimLeft(filepath.Base(dir), ".")
	name = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
	if name == "" {
		return "cluster"
	}
	return name
}

// ensureCluster returns the superuser password, running initdb first when
// dataDir holds no complete cluster.
func ensureCluster(ctx context.Context, bin, dir, dataDir string, u *osUser, fsync bool, log *slog.Logger) (string, error) {
	pwPath := filepath.Join(dir, "pg.password")
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		pw, err := readPassword(pwPath)
		if err != nil {
			return "", fmt.Errorf("pglocal: cluster %s exists but its password is unusable (remove %s to start over): %w", dataDir, dataDir, err)
		}
		return pw, fixOwner(dataDir, u)
	}

	// Reuse the password of an initdb that was interrupted after writing it.
	pw, err := readPassword(pwPath)
	if errors.Is(err, fs.ErrNotExist) {
		pw, err = writePassword(pwPath)
	}
	if err != nil {
		return "", err
	}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		log.Info("pglocal: removing a half-initialised cluster", "data_dir", dataDir)
	}
	log.Info("pglocal: initialising a new PostgreSQL cluster", "data_dir", dataDir)
	err = initdb(ctx, bin, dataDir, pw, u, fsync, "--locale=C.UTF-8", log)
	if err != nil {
		log.Info("pglocal: initdb with locale C.UTF-8 failed; retrying with --no-locale")
		err = initdb(ctx, bin, dataDir, pw, u, fsync, "--no-locale", log)
	}
	return pw, err
}

// initdb creates the cluster in a fresh dataDir. Whatever is in dataDir
// goes first: initdb refuses a non-empty directory, and without PG_VERSION
// it can only be the remains of an interrupted initdb.
func initdb(ctx context.Context, bin, dataDir, password string, u *osUser, fsync bool, locale string, log *slog.Logger) error {
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("pglocal: initdb: %w", err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return fmt.Errorf("pglocal: initdb: %w", err)
	}
	if err := u.chown(dataDir); err != nil {
		return fmt.Errorf("pglocal: initdb: %w", err)
	}

	// initdb reads the password from a file, as the postgres OS user; the
	// data directory's parent is known to be reachable by it.
	pwFile, err := os.CreateTemp(filepath.Dir(dataDir), ".pwfile-*")
	if err != nil {
		return fmt.Errorf("pglocal: initdb: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, err = pwFile.WriteString(password + "\n")
	if cerr := pwFile.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = u.chown(pwFile.Name())
	}
	if err != nil {
		return fmt.Errorf("pglocal: initdb: password file: %w", err)
	}

	args := []string{"-D", dataDir, "-U", superuser, "--auth=scram-sha-256",
		"--pwfile=" + pwFile.Name(), "-E", "UTF8", locale}
	if !fsync {
		args = append(args, "--no-sync") // throwaway cluster: skip the final sync
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	cmd.Dir = "/" // our working directory may be closed to the postgres user
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred()}
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(string(out)) {
		log.Debug("initdb", "line", strings.TrimRight(line, "\n"))
	}
	if err != nil {
		return fmt.Errorf("pglocal: initdb %s: %w\n%s", locale, err, lastLines(out, 20))
	}
	return nil
}

// fixOwner hands an existing cluster to u when it belongs to someone else,
// e.g. after an earlier run as a normal user.
func fixOwner(dataDir string, u *osUser) error {
	var st syscall.Stat_t
	if u == nil || syscall.Stat(dataDir, &st) != nil || st.Uid == u.uid {
		return nil
	}
	err := filepath.WalkDir(dataDir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return u.chown(path)
	})
	if err != nil {
		return fmt.Errorf("pglocal: chown %s: %w", dataDir, err)
	}
	return nil
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("pglocal: %s is empty", path)
	}
	return pw, nil
}

// writePassword creates path (0600) with a new random password. It writes
// a temporary file and renames it, so a crash never leaves an empty file.
func writePassword(path string) (string, error) {
	buf := make([]byte, 32)
	rand.Read(buf)
	pw := hex.EncodeToString(buf)
	f, err := os.CreateTemp(filepath.Dir(path), ".pg.password-*")
	if err != nil {
		return "", fmt.Errorf("pglocal: password file: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	_, err = f.WriteString(pw + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("pglocal: password file: %w", err)
	}
	return pw, nil
}

// lastLines returns at most the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
