package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// With ROLEGATE_METRICS_ADDR set, the metrics listener shows the requests
// served by operation id, the logins by outcome and the stack's gauges,
// while the API's listener has no /metrics.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	const pw = "the administrator's password"
	addr, logs := startRun(t, map[string]string{
		"DATABASE_URL": testdb.URL(t), "ROLEGATE_MASTER_KEY": masterKey,
		"ROLEGATE_ADMIN_PASSWORD": pw, "ROLEGATE_METRICS_ADDR": metricsAddr,
	})

	tok := loginOK(t, addr, "admin@localhost", pw)
	resp, err := apitest.ContractClient(t).PostForm("http://"+addr+"/token", url.Values{"grant_type": {"password"}, "username": {"admin@localhost"}, "password": {"not the password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("login with a wrong password = %d, want 400", resp.StatusCode)
	}
	if code, body := get(t, addr, "/identify/me", tok); code != 200 {
		t.Fatalf("GET /identify/me = %d %s", code, body)
	}
	if code, _ := get(t, addr, "/no/such/path", ""); code != 404 {
		t.Fatalf("GET /no/such/path = %d, want 404", code)
	}
	if code, _ := get(t, addr, "/metrics", ""); code != 404 {
		t.Errorf("GET /metrics on the API's listener = %d, want 404", code)
	}

	want := []string{
		`rolegate_http_requests_total{operation="getMe",status="200"} 1`,
		`rolegate_http_requests_total{operation="createToken",status="200"} 1`,
		`rolegate_http_requests_total{operation="createToken",status="400"} 1`,
		// /no/such/path and the API's /metrics: no operation, no path label.
		`rolegate_http_requests_total{operation="unrouted",status="404"} 2`,
		`rolegate_http_request_duration_seconds_count{operation="getMe"} 1`,
		`rolegate_logins_total{outcome="success"} 1`,
		`rolegate_logins_total{outcome="invalid_grant"} 1`,
		`rolegate_throttled_requests_total{operation="createToken"} 0`,
		`rolegate_revocation_feed_up 1`,
		`rolegate_password_hash_queue_length 0`,
		`rolegate_db_pool_max_connections `,
		`rolegate_db_pool_acquires_total `,
		`rolegate_password_hash_workers `,
		`rolegate_token_cache_misses_total `,
		`rolegate_revocation_feed_lag_seconds `,
		`rolegate_http_requests_total{operation="getReadyz",status="200"} `, // startRun's polling
	}
	// The counters move as each handler returns, which may be a moment
	// after its client has the answer.
	var text string
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		text, missing = scrapeMetrics(t, metricsAddr), nil
		for _, w := range want {
			if !hasLinePrefix(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("the metrics lack:\n%s\nmetrics:\n%s", strings.Join(missing, "\n"), text)
	}
	if regexp.MustCompile(`operation="/`).MatchString(text) {
		t.Error("a path is used as an operation label")
	}

	// The request log names the operation too.
	found := eventually(func() bool {
		for _, l := range logs.logLines(t) {
			if l["msg"] == "request" && l["path"] == "/identify/me" {
				if l["operation"] != "getMe" {
					t.Errorf("log line of GET /identify/me: operation %v, want getMe", l["operation"])
				}
				return true
			}
		}
		return false
	})
	if !found {
		t.Errorf("no log line for GET /identify/me; logs:\n%s", logs)
	}
}

// scrapeMetrics GETs /metrics from the metrics listener at addr.
func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics on the metrics listener = %d (%v)", resp.StatusCode, err)
	}
	return string(b)
}

// hasLinePrefix reports whether a line of text starts with prefix (the
// whole line when prefix ends in its value).
func hasLinePrefix(text, prefix string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if l == prefix || strings.HasSuffix(prefix, " ") && strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
