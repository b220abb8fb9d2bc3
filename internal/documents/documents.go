// Package documents stores PDF documents' bytes in a blob bucket
// (gocloud.dev/blob: file:// by default) and inspects and splits PDFs with
// pdfcpu.
//
// It keeps no metadata: callers keep their rows elsewhere (PostgreSQL) and
// refer to the bytes by the key they stored them under. Everything here that
// reads a PDF treats it as hostile input: a Processor bounds the work of each
// operation (pages, decompressed bytes, time, bytes written, operations at
// once), pdfcpu never touches the network or the user's config directory,
// and a panic inside pdfcpu is reported as ErrDamaged rather than crashing
// the caller.
package documents

import "errors"

// The package's error vocabulary. Errors returned by this package wrap one of
// these, so callers test them with errors.Is and map them to responses in one
// place; the wrapped text adds detail meant for logs, not for clients.
var (
	// ErrNotPDF reports content that does not start with "%PDF-".
	ErrNotPDF = errors.New("documents: not a PDF")

	// ErrDamaged reports a PDF that pdfcpu cannot read or validate,
	// including a truncated one and one without pages.
	ErrDamaged = errors.New("documents: damaged PDF")

	// ErrEncrypted reports a PDF that cannot be opened without a password.
	ErrEncrypted = errors.New("documents: PDF is password-protected")

	// ErrTooManyPages reports a PDF with more than MaxPages pages.
	ErrTooManyPages = errors.New("documents: too many pages")

	// ErrTooCostly reports a PDF that takes more than a Processor's work
	// bounds to read: more decompressed bytes than MaxDecodedBytes (a
	// compression bomb), or more time than Timeout.
	ErrTooCostly = errors.New("documents: PDF exceeds the work bounds")

	// ErrTooLarge reports split parts that together would take more than
	// MaxSplitGrowth times the source's bytes.
	ErrTooLarge = errors.New("documents: split parts too large")

	// ErrBadRange reports a page range that is malformed, lies outside the
	// document, or repeats or overlaps another. A *RangeError wrapping it
	// says which.
	ErrBadRange = errors.New("documents: bad page range")

	// ErrUserBusy reports a user who already runs as many PDF operations as
	// Slots allows one user. It comes wrapped in a *BusyError.
	ErrUserBusy = errors.New("documents: too many PDF operations of this user at once")

	// ErrBusy reports a replica that already runs as many PDF operations as
	// Slots allows in all. It comes wrapped in a *BusyError.
	ErrBusy = errors.New("documents: too many PDF operations at once")

	// ErrNotFound reports a key with no document stored under it.
	ErrNotFound = errors.New("documents: not found")
)

// MaxPages is the largest page count Inspect and Split accept. It bounds the
// memory and time one request can cost.
const MaxPages = 10000

// MaxSplitGrowth bounds the bytes one split writes: its parts together may
// take at most MaxSplitGrowth times the source's bytes. Parts that share a
// large resource (a font, an image) each carry a copy of it, so without a
// bound a small upload can become a great deal of storage.
const MaxSplitGrowth = 4
