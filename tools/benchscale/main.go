// Command benchscale is `make bench-scale`: rolegate's reads as the
// database grows. It starts rolegate as `make run` does (embedded
// PostgreSQL), seeds it with SQL inside the database, not through the API,
// to a small size and then a large one, and at each loads every route with
// wrk: the figures are wrk's p50 and p99. Indexed reads should not slow by
// more than 1.5× from the small size to the large one; the program prints
// the ratio per route and flags those over it. At the largest size it
// prints EXPLAIN (ANALYZE, BUFFERS) of each list query, both as a generic
// plan (what a prepared statement may settle on) and a custom one.
//
// Timings are evidence, not assertions: nothing fails on a slow result,
// and `make test` never runs it. The data directory is removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench-scale: ")
	var o options
	flag.StringVar(&o.bin, "bin", "bin/rolegate", "the rolegate binary")
	flag.StringVar(&o.users, "users", "10000,1000000", "the sizes, in accounts, comma-separated, smallest first")
	flag.IntVar(&o.notesPerUser, "notes-per-user", 10, "notes per account")
	flag.IntVar(&o.usersPerDocument, "users-per-document", 10, "accounts per document record")
	flag.IntVar(&o.eventsPerUser, "events-per-user", 1, "audit events per account")
	flag.IntVar(&o.benchNotes, "bench-notes", 10_000, "notes of the bench user (the deep page is in their middle)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each wrk run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of every route; figures are medians")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads (-t)")
	flag.IntVar(&o.conns, "conns", 8, "wrk connections (-c)")
	flag.Float64Var(&o.limit, "limit", 1.5, "the largest p50 ratio, largest to smallest size, of an indexed read")
	flag.BoolVar(&o.explain, "explain", true, "print EXPLAIN (ANALYZE, BUFFERS) of the list queries at the largest size")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	bin                            string
	users                          string
	notesPerUser, usersPerDocument int
	eventsPerUser, benchNotes      int
	duration                       time.Duration
	rounds, threads, conns         int
	limit                          float64
	explain                        bool
}

// sizes returns the seeded sizes the options name.
func (o options) sizes() ([]sizes, error) {
	var out []sizes
	for _, f := range strings.Split(o.users, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < max(10_000, o.benchNotes/o.notesPerUser) || (len(out) > 0 && n <= out[len(out)-1].users) {
			return nil, fmt.Errorf("-users %q: sizes of at least 10000 accounts, growing", o.users)
		}
		out = append(out, sizes{
			users: n, notes: n * o.notesPerUser, documents: max(1, n/o.usersPerDocument),
			events: max(benchEvents+1, n*o.eventsPerUser), benchNotes: o.benchNotes,
		})
	}
	return out, nil
}

// measured is what one size gave.
type measured struct {
	size    sizes
	results []result // by route, in routes' order
	rss     int64    // rolegate's, after the routes
	dbBytes int64    // pg_database_size
}

func run(ctx context.Context, o options) error {
	all, err := o.sizes()
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.bin, err)
	}
	dir, err := os.MkdirTemp("", "bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Run as root, rolegate runs PostgreSQL as the postgres OS user, which
	// must reach the cluster under dir for it to stay there.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	log.Printf("data directory %s", dir)
	rg, err := startRolegate(ctx, o.bin, dir)
	if err != nil {
		return err
	}
	defer rg.stop()
	d, err := attach(ctx, filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	defer d.close(dir)
	w, err := newWrk(dir, o.threads, o.conns)
	if err != nil {
		return err
	}
	s := &seeder{pool: d.pool}
	if s.hash, err = benchHash(); err != nil {
		return err
	}

	var got []measured
	var rts []route
	for i, size := range all {
		log.Printf("seeding to %s", size)
		start := time.Now()
		if err := s.grow(ctx, size); err != nil {
			return err
		}
		log.Printf("seeded in %v", time.Since(start).Round(time.Second))
		if rts, err = routes(ctx, rg, d); err != nil {
			return err
		}
		m := measured{size: size}
		for _, rt := range rts { // warm caches and connections
			if rt.path != "" {
				if _, err := w.run(ctx, rg, rt, time.Second); err != nil {
					return err
				}
			}
		}
		runs := make([][]result, len(rts))
		for round := range o.rounds {
			log.Printf("  round %d of %d", round+1, o.rounds)
			for i, rt := range rts {
				if rt.path == "" { // explained only
					continue
				}
				r, err := w.run(ctx, rg, rt, o.duration)
				if err != nil {
					return err
				}
				runs[i] = append(runs[i], r)
			}
		}
		for i, rt := range rts {
			r := medians(runs[i])
			if rt.path != "" {
				log.Printf("  %-44s %8.0f req/s  p50 %s  p99 %s%s", rt.name, r.RPS(), ms(r.P50US), ms(r.P99US), failed(r))
			}
			m.results = append(m.results, r)
		}
		m.rss = rg.rss()
		if m.dbBytes, err = d.size(ctx); err != nil {
			return err
		}
		got = append(got, m)
		if i == len(all)-1 && o.explain {
			if err := explainAll(ctx, d, rts, os.Stdout); err != nil {
				return err
			}
		}
	}
	report(os.Stdout, o, rts, got)
	return nil
}

// medians is each figure's median over rs, failures summed.
func medians(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	med := func(f func(result) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var m result
	m.P50US = med(func(r result) int64 { return r.P50US })
	m.P99US = med(func(r result) int64 { return r.P99US })
	// Throughput: the median rate, as requests over a nominal 1,000 s.
	rate := med(func(r result) int64 { return int64(r.RPS() * 1000) })
	m.DurationUS, m.Requests = 1_000_000_000, rate
	for _, r := range rs {
		m.Non2xx += r.Non2xx
		m.SocketError += r.SocketError
	}
	return m
}

// failed notes a run's failed requests.
func failed(r result) string {
	if n := r.Non2xx + r.SocketError; n > 0 {
		return fmt.Sprintf("  (%d failed)", n)
	}
	return ""
}

func ms(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
