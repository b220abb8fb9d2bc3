//go:build pprof

package main

import (
	"net/http"
	"net/http/pprof"
)

// withDebug adds Go's profiler under /debug/pprof/ to the metrics
// listener, in binaries built with `make build TAGS=pprof` only: for
// profiling under load (`make bench-http PROFILE=cpu.pprof`), never in a
// release.
func withDebug(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", metrics)
	return mux
}
