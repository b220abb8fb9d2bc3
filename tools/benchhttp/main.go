// Command benchhttp is `make bench-http`: a side-by-side load test, over
// real TCP on 127.0.0.1, of a bare net/http handler, the textbook
// oapi-codegen + kin-openapi + golang-jwt stack, and rolegate as `make run`
// starts it (embedded PostgreSQL, seeded users and notes); then what one
// complete sign-in costs rolegate through the password grant and through
// the authorization code flow (signin.go).
//
// wrk generates the load, and a Go client with a cookie jar the
// sign-ins, which take several requests each; their figures and the
// servers' CPU time from /proc are all that is measured. Rounds are
// interleaved, so that a slower minute of the machine falls on every stack
// alike, and each figure is the median of the rounds. Timings are evidence, not assertions: nothing here fails on
// a slow result, and `make test` never runs it.
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
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench-http: ")
	var o options
	flag.StringVar(&o.bin, "bin", "bin/rolegate", "the rolegate binary")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each wrk run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; figures are medians")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads (-t)")
	flag.IntVar(&o.conns, "conns", 32, "wrk connections (-c)")
	flag.IntVar(&o.tokens, "tokens", 100_000, "distinct tokens presented for the memory figures")
	flag.IntVar(&o.signIns, "signins", 20, "complete sign-ins of each flow (password grant, code flow), one at a time and again -signinconc at once")
	flag.IntVar(&o.signInConc, "signinconc", 4, "sign-ins at once in the concurrent part")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "also write a CPU profile of rolegate under load to this file")
	flag.StringVar(&o.profileOf, "profileof", "me", "what -cpuprofile profiles: me (GET /identify/me), notes (notes by document) or flood (/identify/me during the login flood)")
	serveStub := flag.String("serve", "", "internal: serve the bare or textbook stack (\"bare\" or \"textbook\")")
	flag.Parse()

	if *serveStub != "" {
		if err := serve(*serveStub); err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	bin        string
	duration   time.Duration
	rounds     int
	threads    int
	conns      int
	tokens     int
	signIns    int
	signInConc int
	cpuProfile string
	profileOf  string
}

func run(ctx context.Context, o options) error {
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.bin, err)
	}
	dir, err := os.MkdirTemp("", "bench-http-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	profiling = o.cpuProfile != ""
	rg, err := startRolegate(ctx, o.bin, dir)
	if err != nil {
		return err
	}
	defer rg.stop()
	time.Sleep(2 * time.Second) // let start-up work settle before reading idle memory
	idle := rg.rss()
	seed, err := seedRolegate(ctx, rg)
	if err != nil {
		return err
	}
	bare, err := startStub(ctx, "bare", dir, seed.meBody, nil)
	if err != nil {
		return err
	}
	defer bare.stop()
	textbook, err := startStub(ctx, "textbook", dir, seed.meBody, seed.jwks)
	if err != nil {
		return err
	}
	defer textbook.stop()
	w, err := newWrk(dir, o)
	if err != nil {
		return err
	}

	seededRSS := rg.rss()

	auth := "Bearer " + seed.token
	targets := []target{
		{name: "bare net/http handler, same JSON", server: bare, path: "/identify/me", auth: auth},
		{name: "textbook oapi-codegen + kin-openapi + golang-jwt", server: textbook, path: "/identify/me", auth: auth},
		{name: "rolegate GET /identify/me", server: rg, path: "/identify/me", auth: auth},
		{name: "rolegate GET /notes/document/src/{src} (10 notes)", server: rg, path: "/notes/document/src/" + seedDocument, auth: auth},
	}
	// Warm every stack once, so that no round pays for first connections.
	for _, t := range targets {
		if _, err := w.run(ctx, t, time.Second, nil); err != nil {
			return err
		}
	}
	results := make([][]result, len(targets))
	var floods []floodRound
	for round := 1; round <= o.rounds; round++ {
		log.Printf("round %d of %d", round, o.rounds)
		for i, t := range targets {
			r, err := w.run(ctx, t, o.duration, nil)
			if err != nil {
				return err
			}
			results[i] = append(results[i], r)
		}
		f, err := w.flood(ctx, targets[2], seed)
		if err != nil {
			return err
		}
		floods = append(floods, f)
	}

	log.Printf("sign-ins: %d of each flow one at a time, then %d at once", o.signIns, o.signInConc)
	started := time.Now()
	signed, err := signIns(ctx, rg, seed, o.signIns, o.signInConc)
	if err != nil {
		return err
	}
	log.Printf("sign-ins: done in %.1f s", time.Since(started).Seconds())

	if o.cpuProfile != "" {
		t, flood := targets[2], o.profileOf == "flood"
		if o.profileOf == "notes" {
			t = targets[3]
		}
		if err := profile(ctx, w, t, flood, seed, o.cpuProfile); err != nil {
			return err
		}
	}

	log.Printf("memory: presenting %d distinct tokens, twice over", o.tokens)
	mem, err := w.memory(ctx, rg, seed, o.tokens, idle, seededRSS)
	if err != nil {
		return err
	}
	report(os.Stdout, o, targets, results, floods, signed, mem)
	return nil
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range splitLines(string(b)) {
			if k, v, ok := cut(line, ":"); ok && k == "model name" {
				model = v
				break
			}
		}
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores, %s/%s, %s, host %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), filepath.Base(host))
}
