// Package loadtest holds what rolegate's load tests (tools/benchhttp,
// tools/benchscale) share: the Lua that makes wrk print its own figures,
// and the login flood's, reading those figures back, and a process's
// resident set size and log.
package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The Lua that wrk runs. ReportLua prints wrk's own figures as one JSON
// line, so that nothing is parsed out of its human-readable summary;
// LoginLua (to be followed by ReportLua) posts the form given as its
// argument, the password grant, from a random address behind the trusted
// proxy (loopback), as a flood from many machines would, so that no one
// address's budget is what is measured.
const (
	ReportLua = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
`
	LoginLua = `
function init(args)
  wrk.method = "POST"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format()
end
`
)

// Figures are one wrk run's, as ReportLua prints them.
type Figures struct {
	Requests    int64 `json:"requests"`
	DurationUS  int64 `json:"duration_us"`
	P50US       int64 `json:"p50_us"`
	P99US       int64 `json:"p99_us"`
	Non2xx      int64 `json:"non2xx"`
	SocketError int64 `json:"socket_errors"`
}

// RPS is the requests answered per second.
func (f Figures) RPS() float64 { return float64(f.Requests) / (float64(f.DurationUS) / 1e6) }

// ParseFigures reads the figures out of wrk's output.
func ParseFigures(out string) (Figures, error) {
	var f Figures
	_, line, ok := strings.Cut(out, "BENCH ")
	if !ok {
		return f, fmt.Errorf("wrk printed no figures:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	if err := json.Unmarshal([]byte(line), &f); err != nil {
		return f, fmt.Errorf("wrk's figures %q: %w", line, err)
	}
	return f, nil
}

// RSS is process pid's resident set size in bytes, from /proc; 0 when it
// cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "VmRSS" {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Tail is the end of the log at path, for an error message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
