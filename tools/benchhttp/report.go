package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"
)

// seedBest is the seed's best throughput on its notes-by-document route,
// the baseline of the 15× target.
const seedBest = 656

// median returns the median of f over rs.
func median[T int64 | float64 | time.Duration](rs []result, f func(result) T) T {
	v := make([]T, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func rps(r result) float64            { return r.RPS() }
func p50(r result) time.Duration      { return time.Duration(r.P50US) * time.Microsecond }
func p99(r result) time.Duration      { return time.Duration(r.P99US) * time.Microsecond }
func cpuPer(r result) time.Duration   { return r.cpuPerRequest() }
func dbCPUPer(r result) time.Duration { return r.dbCPU / time.Duration(max(1, r.Requests)) }
func failures(r result) int64         { return r.Non2xx + r.SocketError }
func mib(b int64) string              { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func verdict(ok bool) string          { return map[bool]string{true: "met", false: "NOT met"}[ok] }
func us(d time.Duration) string       { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
func ms(d time.Duration) string       { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
func ms1(d time.Duration) string      { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func ratio(a, b float64) float64      { return a / max(b, 1) }
func sum(rs []result, f func(result) int64) (n int64) {
	for _, r := range rs {
		n += f(r)
	}
	return n
}

// report prints the table, the ratios against the targets and the memory
// figures, as Markdown for the README.
func report(w io.Writer, o options, targets []target, results [][]result, floods []floodRound, signed signInFigures, mem memoryFigures) {
	var calm, flooded, logins []result
	for _, f := range floods {
		calm, flooded, logins = append(calm, f.calm), append(flooded, f.flooded), append(logins, f.logins)
	}
	fmt.Fprintf(w, "\n%s, %s; wrk -t%d -c%d, %d interleaved rounds of %v, medians.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), o.threads, o.conns, o.rounds, o.duration)
	fmt.Fprintln(w, "| route | req/s | p50 | p99 | server CPU per request | of which PostgreSQL | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for i, t := range targets {
		rs := results[i]
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %d |\n", t.name, median(rs, rps), ms(median(rs, p50)), ms(median(rs, p99)),
			us(median(rs, cpuPer)), us(median(rs, dbCPUPer)), sum(rs, failures))
	}
	fmt.Fprintf(w, "| /identify/me, wrk -t%d -c%d | %.0f | %s | %s | %s | | %d |\n", max(1, o.threads/2), max(1, o.conns/2),
		median(calm, rps), ms(median(calm, p50)), ms(median(calm, p99)), us(median(calm, cpuPer)), sum(calm, failures))
	fmt.Fprintf(w, "| … during a login flood | %.0f | %s | %s | | | %d |\n",
		median(flooded, rps), ms(median(flooded, p50)), ms(median(flooded, p99)), sum(flooded, failures))
	fmt.Fprintf(w, "| the flood: POST /token, right password, random addresses, wrk -t%d -c%d | %.0f | %s | %s | | | %.0f%% refused |\n",
		max(1, o.threads/2), max(1, o.conns/2), median(logins, rps), ms(median(logins, p50)), ms(median(logins, p99)),
		100*float64(sum(logins, failures))/float64(max(1, sum(logins, func(r result) int64 { return r.Requests }))))
	signInReport(w, signed)
	bare, book, me, doc := median(results[0], rps), median(results[1], rps), median(results[2], rps), median(results[3], rps)
	calmRPS, floodRPS, floodP50 := median(calm, rps), median(flooded, rps), median(flooded, p50)

	fmt.Fprintln(w, "\n| target | measured | |")
	fmt.Fprintln(w, "|---|---:|---|")
	fmt.Fprintf(w, "| /identify/me ≥ 0.90× bare, access log on | %.2f× | %s |\n", ratio(me, bare), verdict(ratio(me, bare) >= 0.90))
	fmt.Fprintf(w, "| /identify/me ≥ 1.3× the textbook stack | %.2f× | %s |\n", ratio(me, book), verdict(ratio(me, book) >= 1.3))
	fmt.Fprintf(w, "| notes by document ≥ 15× the seed (%d req/s), ≥ 9,840 req/s | %.1f× (%.0f req/s; %.2f× bare) | %s |\n",
		seedBest, ratio(doc, seedBest), doc, ratio(doc, bare), verdict(doc >= 15*seedBest))
	fmt.Fprintf(w, "| during a login flood, /identify/me keeps ≥ 0.5× its throughput | %.2f× (%.0f of %.0f req/s) | %s |\n",
		ratio(floodRPS, calmRPS), floodRPS, calmRPS, verdict(ratio(floodRPS, calmRPS) >= 0.5))
	fmt.Fprintf(w, "| … with p50 ≤ 5 ms | %s | %s |\n", ms(floodP50), verdict(floodP50 <= 5*time.Millisecond))

	fmt.Fprintln(w, "\n| rolegate memory | RSS |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| idle, after start-up | %s |\n", mib(mem.idle))
	fmt.Fprintf(w, "| after seeding (%d accounts made and logged in: Argon2id, 19 MiB a hash) | %s |\n", seedUsers+2, mib(mem.seeded))
	fmt.Fprintf(w, "| after the load above | %s |\n", mib(mem.afterLoad))
	fmt.Fprintf(w, "| after %d distinct tokens (%.0f req/s, %s CPU per request) | %s |\n", mem.tokens, mem.firstRun.RPS(), us(mem.firstRun.cpuPerRequest()), mib(mem.first))
	fmt.Fprintf(w, "| after %d more (%.0f req/s) | %s |\n", mem.tokens, mem.secondRun.RPS(), mib(mem.second))
}

// signInReport prints what one complete sign-in costs through each flow,
// the password grant's row beside the code flow's.
func signInReport(w io.Writer, f signInFigures) {
	fmt.Fprintf(w, "\n%d complete sign-ins of each flow one at a time, then %d at once, each a new browser; latency from the first request to the tokens (p99 by nearest rank: of %d, the slowest).\n\n", f.n, f.conc, f.n)
	fmt.Fprintln(w, "| sign-in (one complete login each) | sign-ins/s | p50 | p99 | server CPU per sign-in | of which PostgreSQL | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for i, c := range []int{1, f.conc} {
		at := fmt.Sprintf("%d at once", c)
		if c == 1 {
			at = "one at a time"
		}
		for fl, r := range f.runs[i] {
			name := flow(fl).String()
			if i == 0 && fl == int(codeFlow) {
				name += " (GET /authorize, POST /sign-in, POST /token with PKCE; openid email)"
			}
			if i == 0 && fl == int(passwordFlow) {
				name += " (POST /token)"
			}
			fmt.Fprintf(w, "| %s, %s | %.1f | %s | %s | %s | %s | %d |\n", name, at, r.rate(), ms(r.quantile(0.50)), ms(r.quantile(0.99)),
				ms1(r.cpuPer()), ms1(r.dbCPUPer()), r.failed)
		}
	}
	fmt.Fprintln(w)
	for i, c := range []int{1, f.conc} {
		pw, code := f.runs[i][passwordFlow], f.runs[i][codeFlow]
		at := fmt.Sprintf("%d at once", c)
		if c == 1 {
			at = "One at a time"
		}
		fmt.Fprintf(w, "%s, the code flow against the password grant: p50 %.2f×, server CPU per sign-in %.2f×; the code flow's requests' p50: GET /authorize %s, POST /sign-in %s, POST /token %s.", at,
			ratio(float64(code.quantile(0.50)), float64(pw.quantile(0.50))), ratio(float64(code.cpuPer()), float64(pw.cpuPer())),
			ms(code.stepQuantile(0, 0.5)), ms(code.stepQuantile(1, 0.5)), ms(code.stepQuantile(2, 0.5)))
		if err := cmp.Or(pw.firstErr, code.firstErr); err != nil {
			fmt.Fprintf(w, " First failure: %v.", err)
		}
		fmt.Fprintln(w)
	}
}
