package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

// A replica told to stop answers 503 on /readyz at once, serves on for
// ROLEGATE_SHUTDOWN_DELAY, answering with Connection: close, then refuses
// connections and finishes what it started: clients under load on it that
// keep their connections alive and health-check /readyz, as load
// balancers do, writing notes and reading, and turning to the other
// replica once /readyz has failed twice (or a connection is refused), see
// no failed request, and every note acknowledged is kept.
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

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	var closing atomic.Int64 // answers of a with Connection: close
	call := func(addr string, write bool) (int, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/identify/me", nil)
		if write {
			req, _ = http.NewRequest("POST", "http://"+addr+"/notes", strings.NewReader(`{"document_src":"drain.pdf","title":"t","body":"b"}`))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.Close && addr == a.addr {
			closing.Add(1)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	var servedByA, servedByB, written atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The balancer's health check: every 100 ms, unhealthy after two
	// failures in a row, well within the shutdown delay.
	var aDown atomic.Bool
	wg.Go(func() {
		failed := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if resp, err := client.Get("http://" + a.addr + "/readyz"); err == nil && resp.StatusCode == http.StatusOK {
				failed = 0
				resp.Body.Close()
				continue
			} else if err == nil {
				resp.Body.Close()
			}
			if failed++; failed >= 2 {
				aDown.Store(true)
			}
		}
	})
	for i := range 4 {
		write := i%2 == 0
		want := http.StatusOK
		if write {
			want = http.StatusCreated
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				served := &servedByB
				var code int
				var err error = syscall.ECONNREFUSED
				if !aDown.Load() {
					served = &servedByA
					code, err = call(a.addr, write)
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					served = &servedByB
					code, err = call(b.addr, write)
				}
				if err == nil && code == want && write {
					written.Add(1)
				}
				if err != nil || code != want {
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
	if closing.Load() == 0 {
		t.Error("no answer of the draining replica said Connection: close")
	}
	// Every note acknowledged is there, and no other.
	conn, err := pgx.Connect(context.Background(), vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var kept int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM notes WHERE document_src = 'drain.pdf'").Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != written.Load() {
		t.Errorf("%d notes kept, %d acknowledged", kept, written.Load())
	}
	t.Logf("served %d by the stopped replica (%d while draining, %d with Connection: close), %d by the other; %d notes written",
		servedByA.Load(), servedByA.Load()-draining, closing.Load(), servedByB.Load(), written.Load())
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
