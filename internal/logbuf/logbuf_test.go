package logbuf_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/logbuf"
)

// sink is a destination that can be made to block.
type sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	blocked chan struct{} // while open, Write waits
}

func (s *sink) Write(p []byte) (int, error) {
	if b := s.blocked; b != nil {
		<-b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLinesArriveInOrderInBatches(t *testing.T) {
	out := &sink{}
	w := logbuf.New(out, logbuf.Options{Interval: 20 * time.Millisecond})
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	waitFor(t, "the lines", func() bool { return out.String() == want.String() })
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes > 10 {
		t.Errorf("1000 lines took %d writes to the destination, want a few batches", writes)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close, lines go straight through.
	_, _ = w.Write([]byte("after\n"))
	if !strings.HasSuffix(out.String(), "after\n") {
		t.Errorf("a line written after Close is missing")
	}
}

func TestFlush(t *testing.T) {
	out := &sink{}
	w := logbuf.New(out, logbuf.Options{Interval: time.Hour})
	defer w.Close()
	_, _ = w.Write([]byte("now\n"))
	if !w.Flush() {
		t.Fatal("Flush = false")
	}
	if got := out.String(); got != "now\n" {
		t.Errorf("after Flush the destination holds %q", got)
	}
}

func TestCloseWritesWhatIsQueued(t *testing.T) {
	out := &sink{}
	w := logbuf.New(out, logbuf.Options{Interval: time.Hour})
	_, _ = w.Write([]byte("last words\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "last words\n" {
		t.Errorf("after Close the destination holds %q", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// A stuck destination never blocks Write: lines past the bound are
// dropped, and counted in a line once the destination takes writes again.
func TestStuckDestinationDropsAndReports(t *testing.T) {
	out := &sink{blocked: make(chan struct{})}
	w := logbuf.New(out, logbuf.Options{Interval: 5 * time.Millisecond, Max: 1000, CloseTimeout: 50 * time.Millisecond,
		Dropped: func(n int64) []byte { return fmt.Appendf(nil, "dropped %d\n", n) }})
	_, _ = w.Write([]byte("first\n"))
	time.Sleep(50 * time.Millisecond) // the writer is now stuck writing "first"
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 500 {
			_, _ = w.Write([]byte("0123456789\n")) // 11 bytes: 90 fit under Max
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stuck destination")
	}
	if err := w.Close(); err == nil {
		t.Error("Close returned nil with the destination stuck")
	}
	close(out.blocked)
	waitFor(t, "the dropped-lines report", func() bool { return strings.Contains(out.String(), "dropped 410\n") })
	if got := strings.Count(out.String(), "0123456789\n"); got != 90 {
		t.Errorf("%d lines kept, want the 90 under the bound", got)
	}
}
