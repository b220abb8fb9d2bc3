// Package logbuf buffers log output in memory and writes it out from one
// goroutine, a batch at a time: a request's log line then costs a copy
// rather than a write(2), and a log destination that is slow or stuck
// (a full pipe, a paused terminal) never blocks the requests that log.
//
// Lines reach the destination within the flush interval. When the
// destination does not keep up, lines past the buffer's bound are dropped,
// counted, and the count is reported in a line of its own once writing
// succeeds again.
package logbuf

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultMax      = 4 << 20
	flushAt         = 64 << 10 // pending bytes that wake the writer before the interval
)

// Options tunes a Writer.
type Options struct {
	// Interval is the longest a line waits before it is written;
	// 0 means DefaultInterval.
	Interval time.Duration
	// Max bounds the bytes waiting to be written; past it, lines are
	// dropped. 0 means DefaultMax.
	Max int
	// CloseTimeout bounds how long Close waits for the last write; 0
	// means one second.
	CloseTimeout time.Duration
	// Dropped formats the line that reports n dropped lines, in the log's
	// own format; nil means a line of plain text.
	Dropped func(n int64) []byte
}

// Writer is an io.Writer for a log handler (such as slog's), which calls
// Write once per record: each Write is kept whole or dropped whole.
type Writer struct {
	out  io.Writer
	opts Options

	mu      sync.Mutex
	pending []byte
	dropped int64
	closed  bool

	closeOnce sync.Once

	wake    chan struct{}
	flushed chan chan struct{} // Flush's requests
	stop    chan struct{}
	done    chan struct{}
}

// New starts the goroutine that writes to out; Close stops it.
func New(out io.Writer, opts Options) *Writer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMax
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = time.Second
	}
	w := &Writer{out: out, opts: opts, wake: make(chan struct{}, 1), flushed: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// Write queues p. It never blocks on the destination and never fails: a
// p that would take the queue past Options.Max is dropped and counted.
// After Close, p is written through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.out.Write(p)
	}
	if len(w.pending)+len(p) > w.opts.Max {
		w.dropped++
		w.mu.Unlock()
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	full := len(w.pending) >= flushAt
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out what is queued now, waiting at most
// Options.CloseTimeout, and reports whether it was written. After Close it
// does nothing.
func (w *Writer) Flush() bool {
	done := make(chan struct{})
	timeout := time.After(w.opts.CloseTimeout)
	select {
	case w.flushed <- done:
	case <-w.done:
		return true
	case <-timeout:
		return false
	}
	select {
	case <-done:
		return true
	case <-timeout:
		return false
	}
}

// Close writes what is queued, waiting at most Options.CloseTimeout for a
// stuck destination, and stops the writing goroutine. Later Writes go
// straight to the destination.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-time.After(w.opts.CloseTimeout):
		return fmt.Errorf("logbuf: the log destination did not take the last lines within %v", w.opts.CloseTimeout)
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-t.C:
		case <-w.wake:
		case done := <-w.flushed:
			spare = w.flush(spare)
			close(done)
			continue
		case <-w.stop:
			spare = w.flush(spare)
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.flush(spare) // what came in meanwhile
			return
		}
		spare = w.flush(spare)
	}
}

// flush writes out what is pending, swapping in spare as the new buffer so
// that Writes go on while the destination is written; it returns the
// buffer to reuse next time.
func (w *Writer) flush(spare []byte) []byte {
	w.mu.Lock()
	batch, dropped := w.pending, w.dropped
	w.pending, w.dropped = spare[:0], 0
	w.mu.Unlock()
	if dropped > 0 {
		if w.opts.Dropped != nil {
			batch = append(batch, w.opts.Dropped(dropped)...)
		} else {
			batch = fmt.Appendf(batch, "logbuf: %d log lines dropped: the log destination did not keep up\n", dropped)
		}
	}
	if len(batch) > 0 {
		_, _ = w.out.Write(batch) // there is nowhere else to report a failed log write
	}
	if cap(batch) > 4*flushAt {
		return nil // do not keep a burst's buffer for good
	}
	return batch
}
