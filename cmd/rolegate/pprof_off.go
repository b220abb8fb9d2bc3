//go:build !pprof

package main

import "net/http"

// withDebug returns the metrics handler as it is: the profiler is built in
// only with TAGS=pprof (see pprof.go).
func withDebug(metrics http.Handler) http.Handler { return metrics }
