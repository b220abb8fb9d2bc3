package documents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/memblob"  // mem:// buckets
	"gocloud.dev/gcerrors"
)

// Only the file:// and mem:// drivers are linked in here: the s3blob,
// gcsblob and azureblob drivers together add some 56 modules to go.mod and
// about 50 MB to the binary. A deployment that keeps documents in a cloud
// bucket registers its driver with one blank import in main, for example
//
//	import _ "gocloud.dev/blob/s3blob"
//
// and OpenStore then accepts that scheme.

// Store keeps document bytes in a blob bucket, one blob per key. It is safe
// for concurrent use.
type Store struct {
	bucket *blob.Bucket
}

// contentType is what Put records for every blob.
const contentType = "application/pdf"

// OpenStore opens the bucket at rawURL, for example
// "file:///var/lib/rolegate/documents?create_dir=true" or "mem://".
//
// For file:// URLs it adds no_tmp_dir=true unless the URL says otherwise, so
// that Put writes a temporary file next to its target and renames it into
// place: the rename is then atomic and cannot fail for crossing from
// os.TempDir to another file system. A crash during Put may leave such a
// "<key>.<hex>.tmp" file behind; a reader never sees a partial document.
func OpenStore(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("documents: open store: %w", err)
	}
	if u.Scheme == "file" {
		q := u.Query()
		if !q.Has("no_tmp_dir") {
			q.Set("no_tmp_dir", "true")
			u.RawQuery = q.Encode()
		}
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("documents: open store: %w", err)
	}
	return &Store{bucket: b}, nil
}

// Put stores b under key, replacing what was there, with content type
// application/pdf. Readers see either the old bytes or all of the new ones.
// Put does not check that b is a PDF; see Inspect.
func (s *Store) Put(ctx context.Context, key string, b []byte) error {
	// WriteAll sends the MD5 of b along, so a write cut short is aborted
	// rather than committed.
	err := s.bucket.WriteAll(ctx, key, b, &blob.WriterOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("documents: put %q: %w", key, err)
	}
	return nil
}

// Get returns a reader of the document stored under key and its size in
// bytes. The caller must close the reader. It returns an error wrapping
// ErrNotFound if there is no such document.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, 0, fmt.Errorf("documents: get %q: %w", key, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("documents: get %q: %w", key, err)
	}
	return r, r.Size(), nil
}

// Delete removes the document stored under key. Deleting a missing key is
// not an error, so a retried delete succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.bucket.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("documents: delete %q: %w", key, err)
	}
	return nil
}

// Close releases the bucket. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("documents: close store: %w", err)
	}
	return nil
}

// NewKey returns a fresh random key for a document,
// "documents/<32 hex digits>.pdf".
func NewKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	return "documents/" + hex.EncodeToString(b[:]) + ".pdf"
}
