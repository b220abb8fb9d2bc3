//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

// In binaries built with `make build TAGS=pprof` only (never a release),
// Go's profiler listens on ROLEGATE_PPROF_ADDR, apart from the API and the
// metrics, for profiling under load: `make bench-http PROFILE=cpu.pprof`.
func init() {
	if addr := os.Getenv("ROLEGATE_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
