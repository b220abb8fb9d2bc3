package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/tools/internal/loadtest"
)

// The Lua that wrk runs. report prints wrk's own figures as one JSON line,
// so that nothing is parsed out of its human-readable summary.
const (
	// tokensLua presents every token of a file in turn, each thread its
	// share, and leaves a marker file once its share has been answered.
	tokensLua = `
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  tokens = {}
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  marker = args[2] .. "." .. id
  nthreads = tonumber(args[3])
  i = id + 1
  left = math.ceil((#tokens - id) / nthreads)
end
function request()
  local t = tokens[i]
  i = i + nthreads
  if i > #tokens then i = id + 1 end
  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. t})
end
function response(status, headers, body)
  left = left - 1
  if left == 0 then
    local f = io.open(marker, "w")
    f:close()
  end
end
`
)

// wrk runs the wrk binary with the scripts above.
type wrk struct {
	dir     string
	threads int
	conns   int
}

func newWrk(dir string, o options) (*wrk, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("wrk is not installed (make bench-http installs it with apt-get): %w", err)
	}
	w := &wrk{dir: dir, threads: o.threads, conns: o.conns}
	for name, lua := range map[string]string{"report.lua": loadtest.ReportLua, "flood.lua": loadtest.LoginLua + loadtest.ReportLua, "tokens.lua": tokensLua + loadtest.ReportLua} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(lua), 0o600); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// target is one route of one server.
type target struct {
	name   string
	server *process
	path   string
	auth   string
}

// result is one wrk run's figures and its server's CPU time.
type result struct {
	loadtest.Figures
	cpu   time.Duration // the server's, and its children's (PostgreSQL's)
	dbCPU time.Duration // of that, the children's
}

func (r result) cpuPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.Requests)
}

// run loads t for d with threads and conns of w, or with the arguments of
// custom (the script and its arguments) when set.
func (w *wrk) run(ctx context.Context, t target, d time.Duration, custom []string) (result, error) {
	args := []string{"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--timeout", "10s"}
	if t.auth != "" {
		args = append(args, "-H", "Authorization: "+t.auth)
	}
	script := []string{"-s", filepath.Join(w.dir, "report.lua"), t.server.url(t.path)}
	if custom != nil {
		script = custom
	}
	return w.exec(ctx, t, append(args, script...), nil)
}

// exec runs wrk with args, measuring the CPU time of t's server meanwhile.
// When until is set, wrk is stopped (SIGINT) as soon as it returns true.
func (w *wrk) exec(ctx context.Context, t target, args []string, until func() bool) (result, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	before := treeCPU(t.server.pid())
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	if until != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !until() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			_ = cmd.Process.Signal(os.Interrupt)
		}()
		defer func() { <-done }()
	}
	err := cmd.Wait()
	after := treeCPU(t.server.pid())
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	f, err := loadtest.ParseFigures(out.String())
	if err != nil {
		return result{}, err
	}
	r := result{Figures: f}
	r.cpu, r.dbCPU = after.all-before.all, after.children-before.children
	return r, nil
}

// flood measures t unloaded and then during a flood of correct logins of
// the bench user from random addresses, each with half of w's threads and
// connections, as the issue that set the target did.
func (w *wrk) flood(ctx context.Context, t target, s seeded) (f floodRound, err error) {
	half := &wrk{dir: w.dir, threads: max(1, w.threads/2), conns: max(1, w.conns/2)}
	const d = 5 * time.Second
	if f.calm, err = half.run(ctx, t, d, nil); err != nil {
		return
	}
	floodErr := make(chan error, 1)
	go func() {
		login := target{server: t.server}
		var err error
		f.logins, err = half.run(ctx, login, d+2*time.Second, []string{"-s", filepath.Join(w.dir, "flood.lua"), t.server.url("/token"), "--", s.form})
		floodErr <- err
	}()
	time.Sleep(time.Second) // the flood is on
	f.flooded, err = half.run(ctx, t, d, nil)
	if ferr := <-floodErr; err == nil {
		err = ferr
	}
	return
}

// floodRound is one round of the login flood: the route alone, the route
// during the flood, and the flood itself.
type floodRound struct{ calm, flooded, logins result }

// cpuTimes are CPU times of a process: its own plus its descendants'
// (all), and its descendants' alone.
type cpuTimes struct{ all, children time.Duration }

// treeCPU reads the user and system time of pid and of every live
// descendant (rolegate's embedded PostgreSQL) from /proc.
func treeCPU(pid int) cpuTimes {
	parent := map[int]int{}
	ticks := map[int]int64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		parent[p], _ = strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks[p] = utime + stime
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	var t cpuTimes
	for p, n := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				t.all += time.Duration(n) * tick
				if p != pid {
					t.children += time.Duration(n) * tick
				}
				break
			}
		}
	}
	return t
}
