package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// A replica told to stop answers 503 on /readyz at once, serves on for
// ROLEGATE_SHUTDOWN_DELAY, then refuses connections and finishes what it
// started: a client under load on it, turning to the other replica only
// when a connection is refused, sees no failed request.
func TestRestartWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": testdb.EmptyURL(t), "ROLEGATE_MASTER_KEY": masterKey,
		"ROLEGATE_ADMIN_PASSWORD": "first admin password", "ROLEGATE_SHUTDOWN_DELAY": "2s",
		"ROLEGATE_PUBLIC_URL": publicURL,
	}
	a := startProcess(t, vars)
	waitReady(t, a.addr, 60*time.Second, a.logs)
	b := startProcess(t, vars)
	waitReady(t, b.addr, 60*time.Second, b.logs)
	tok := loginOK(t, a.addr, "admin@localhost", "first admin password")

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	call := func(addr string) (int, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/identify/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	var servedByA, servedByB atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				served := &servedByA
				code, err := call(a.addr)
				if errors.Is(err, syscall.ECONNREFUSED) {
					served = &servedByB
					code, err = call(b.addr)
				}
				if err != nil || code != http.StatusOK {
					mu.Lock()
					failures = append(failures, strings.TrimSpace(http.StatusText(code)+" "+errString(err)))
					mu.Unlock()
					continue
				}
				served.Add(1)
			}
		})
	}
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()

	time.Sleep(300 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not ready at once, while requests are still answered.
	// (Past the delay the probe's connection is refused, failing the test.)
	for deadline := time.Now().Add(10 * time.Second); probe(t, a.addr) != http.StatusServiceUnavailable; {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still answers 200 10 s after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	draining := servedByA.Load()
	if code, body := get(t, a.addr, "/identify/me", tok); code != http.StatusOK {
		t.Fatalf("while draining, GET /identify/me = %d %s", code, body)
	}
	select {
	case <-a.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the stopped replica did not exit; logs:\n%s", a.logs)
	}
	time.Sleep(300 * time.Millisecond) // the load goes on against b alone
	halt()

	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; logs:\n%s", code, a.logs)
	}
	if servedByA.Load() <= draining || servedByB.Load() == 0 {
		t.Errorf("served by the stopped replica while it drained: %d, by the other after: %d; want both",
			servedByA.Load()-draining, servedByB.Load())
	}
	if len(failures) > 0 {
		t.Errorf("%d failed requests (%d served), e.g. %q", len(failures), servedByA.Load()+servedByB.Load(), failures[0])
	}
	t.Logf("served %d by the stopped replica (%d while draining), %d by the other", servedByA.Load(), servedByA.Load()-draining, servedByB.Load())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probe answers the status of addr's /readyz.
func probe(t *testing.T, addr string) int {
	t.Helper()
	resp, err := apitest.ContractClient(t).Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
