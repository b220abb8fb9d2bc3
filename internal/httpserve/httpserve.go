// Package httpserve holds what rolegate's HTTP listeners share: the
// server settings that bound what a client may hold open (the API's, the
// metrics', and those of services built on package resource), and a
// ResponseWriter that keeps nothing, for benchmarks of handlers.
package httpserve

import (
	"log/slog"
	"net/http"
	"time"
)

// Limits bound a listener's connections.
type Limits struct {
	// Read bounds reading a whole request, Write writing its answer.
	Read, Write time.Duration
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes int
}

// The limits of rolegate's listeners.
var (
	// API is the API's: uploads are read within Read.
	API = Limits{Read: 30 * time.Second, Write: 60 * time.Second, MaxHeaderBytes: 64 << 10}
	// Metrics is the metrics listener's, whose requests are small.
	Metrics = Limits{Read: 10 * time.Second, Write: 30 * time.Second, MaxHeaderBytes: 16 << 10}
)

// New returns a server of h within l: a request's header must arrive
// within 5 s and an idle connection is closed after 2 minutes. The
// server's own errors go to logger at warn, unless logger is nil.
func New(h http.Handler, l Limits, logger *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
	if logger != nil {
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	return srv
}

// Discard is a ResponseWriter that keeps nothing but its header, so that a
// benchmark measures a handler rather than a recorder. Its zero value is
// not usable: set H.
type Discard struct{ H http.Header }

// Header returns the header.
func (d *Discard) Header() http.Header { return d.H }

// Write drops b.
func (d *Discard) Write(b []byte) (int, error) { return len(b), nil }

// WriteHeader does nothing.
func (d *Discard) WriteHeader(int) {}
