// Package documents stores PDF documents' bytes in a blob bucket
// (gocloud.dev/blob: file:// by default) and inspects and splits PDFs with
// pdfcpu.
//
// It keeps no metadata: callers keep their rows elsewhere (PostgreSQL) and
// refer to the bytes by the key they stored them under. Everything here that
// reads a PDF treats it as hostile input: work is bounded by MaxPages, pdfcpu
// never touches the network or the user's config directory, and a panic
// inside pdfcpu is reported as ErrDamaged rather than crashing the caller.
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

	// ErrBadRange reports a page range that is malformed or lies outside the
	// document.
	ErrBadRange = errors.New("documents: page range outside the document")

	// ErrNotFound reports a key with no document stored under it.
	ErrNotFound = errors.New("documents: not found")
)

// MaxPages is the largest page count Inspect and Split accept, and the most
// pages Split will write in total across its ranges. It bounds the memory and
// time one request can cost.
const MaxPages = 10000
