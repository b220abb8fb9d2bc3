//go:build !unix

package main

import "os"

// makePrivate creates the data directory when create is set; file modes
// are Unix's.
func makePrivate(dataDir string, create bool) error {
	if !create {
		return nil
	}
	return os.MkdirAll(dataDir, 0o700)
}
