package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// report prints the README's table: each route's p50 and p99 at the
// smallest and the largest size and their ratios, an indexed read flagged
// when its p50 grew by more than o.limit; then memory and database sizes.
func report(out io.Writer, o options, rts []route, got []measured) {
	small, large := got[0], got[len(got)-1]
	sn, ln := count(small.size.users), count(large.size.users)
	fmt.Fprintf(out, "\n## Scale: %s (%s), wrk -t%d -c%d, %v a route, medians of %d rounds\n\n", time.Now().Format("2006-01-02"), machine(), o.threads, o.conns, o.duration, o.rounds)
	for _, m := range got {
		fmt.Fprintf(out, "- %s\n", m.size)
	}
	fmt.Fprintf(out, "\n| route | req/s %s | p50 %s | p99 %s | req/s %s | p50 %s | p99 %s | p50 ratio | p99 ratio |\n", sn, sn, sn, ln, ln, ln)
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var over []string
	for i, rt := range rts {
		if rt.path == "" {
			continue
		}
		a, b := small.results[i], large.results[i]
		r50, r99 := float64(b.P50US)/float64(max(1, a.P50US)), float64(b.P99US)/float64(max(1, a.P99US))
		flag := ""
		switch {
		case rt.indexed && r50 > o.limit:
			flag = fmt.Sprintf(" **over %.1f×**", o.limit)
			over = append(over, rt.name)
		case !rt.indexed:
			flag = " (hashing: not held to the ratio)"
		}
		fmt.Fprintf(out, "| %s | %.0f | %s | %s | %.0f | %s | %s | %.2f×%s | %.2f× |\n", rt.name,
			a.RPS(), ms(a.P50US), ms(a.P99US)+failed(a), b.RPS(), ms(b.P50US), ms(b.P99US)+failed(b), r50, flag, r99)
	}
	fmt.Fprintln(out)
	for _, m := range got {
		fmt.Fprintf(out, "- at %s accounts: rolegate's RSS %.1f MiB, database %.0f MiB (pg_database_size)\n",
			count(m.size.users), float64(m.rss)/(1<<20), float64(m.dbBytes)/(1<<20))
	}
	if len(over) == 0 {
		fmt.Fprintf(out, "\nNo indexed read's p50 grew by more than %.1f×.\n", o.limit)
	} else {
		fmt.Fprintf(out, "\nOver %.1f×: %s.\n", o.limit, strings.Join(over, "; "))
	}
}
