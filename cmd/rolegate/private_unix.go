//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/rolegate/rolegate/internal/pglocal"
)

// makePrivate makes every file and directory this process creates from now
// on private to its user (umask 077: directories 0700, files 0600), whatever
// mode a library asks for. It creates the data directory when create is
// set, and closes an existing one that an earlier version left open to
// other users (which also shuts them out of whatever that version wrote
// inside it).
//
// pglocal gives the postgres group search permission on the data
// directory, and nothing more, when rolegate runs as root, so that the
// embedded cluster can reach its own directory. That permission is kept:
// a command run while `rolegate serve` runs the cluster must not take it
// away, or PostgreSQL panics at its next checkpoint.
func makePrivate(dataDir string, create bool) error {
	syscall.Umask(0o077)
	if create {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	fi, err := os.Stat(dataDir)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil // not ours to change
	}
	closed := os.FileMode(0o077)
	if pglocal.GroupSearchable(dataDir) {
		closed &^= 0o010
	}
	if mode := fi.Mode().Perm(); mode&closed != 0 {
		if err := os.Chmod(dataDir, mode&^closed); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	return nil
}
