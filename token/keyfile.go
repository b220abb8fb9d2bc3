package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// keyLen is the size of generated keys: 256 bits, HS256's hash size.
const keyLen = 32

// LoadOrCreateKey returns the signing key kept in the file at path,
// creating the file (mode 0600, hex) with a random key the first time, so
// that tokens survive restarts. Concurrent first calls agree on one key.
func LoadOrCreateKey(path string) ([]byte, error) {
	if key, err := readKey(path); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("token: key file: %w", err)
	}
	key := make([]byte, keyLen)
	_, _ = rand.Read(key)
	// Write a complete file under a temporary name, then link it into place:
	// a reader never sees a half-written key, and of two racing creators
	// the first link wins and the other reads its key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwt-key-*")
	if err != nil {
		return nil, fmt.Errorf("token: key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("token: key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("token: key file: %w", err)
	}
	return readKey(path)
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < keyLen {
		return nil, fmt.Errorf("token: key file %s is damaged: delete it to make a new key (every issued token then stops working)", path)
	}
	return key, nil
}
