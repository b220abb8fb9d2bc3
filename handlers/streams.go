package handlers

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rolegate/rolegate/internal/fanout"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Streams is what the feeds that resource servers follow (the revocation
// log, the memberships) share: their server-sent event streams each take
// one of the slots, last no longer than the caller's token, and end when
// it is revoked, when the replica drains, or when the client does not keep
// up.
type Streams struct {
	// Slots holds a slot per stream served, of either feed; a stream
	// finding it full is refused with 503. Its capacity is the bound.
	Slots chan struct{}
	// Heartbeat is how often a stream sends a comment when nothing else
	// happens; 0 means 15 seconds.
	Heartbeat time.Duration
	// Now is the clock of tokens' exp.
	Now func() time.Time
	// Draining, once true, refuses new streams; the feeds'
	// EndSubscriptions end those open.
	Draining *atomic.Bool
	// Revoked tells whether the caller's token was revoked since.
	Revoked func(*token.Claims) bool
}

// Stream bounds and timing.
const (
	defaultHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds each write of a stream: a client that
	// takes no bytes for that long is cut off. Each write sets it anew,
	// past the server's WriteTimeout, which would otherwise end the stream.
	streamWriteTimeout = 30 * time.Second
	// streamBuffer is how many batches a stream may be behind its feed
	// before it is cut off.
	streamBuffer = 64
	// streamChunk is about how many bytes a stream writes at once while
	// it sends what the client missed.
	streamChunk = 64 << 10
)

// open takes a slot for a stream of feed (what a 503 names), refusing it
// while the replica drains, while down (the feed's error) is not nil, or
// while every slot is taken. release gives the slot back.
func (s *Streams) open(feed string, down error) (release func(), err error) {
	unavailable := func(detail, retry string) error {
		return &problem.Error{Kind: problem.Unavailable, Detail: detail, Header: http.Header{"Retry-After": {retry}}}
	}
	if s.Draining != nil && s.Draining.Load() {
		return nil, unavailable("This replica is shutting down.", "1")
	}
	if down != nil {
		return nil, unavailable("This replica does not follow the "+feed+" now.", "5")
	}
	select {
	case s.Slots <- struct{}{}:
		return func() { <-s.Slots }, nil
	default:
		return nil, unavailable("This replica serves as many feed streams as it may.", "5")
	}
}

// eventStream is one stream of server-sent events: what the client missed
// (backlog), then what sub delivers, each encoded by encode, until the
// stream has to end.
type eventStream[T any] struct {
	name    string // for the log: "revocation stream"
	ctx     context.Context
	s       *Streams
	sub     *fanout.Subscription[T]
	release func() // gives back the slot and closes sub
	caller  *token.Claims
	// backlog writes what the client missed, through write, which it may
	// call more than once; it ends with the event caught-up.
	backlog func(write func([]byte) error) error
	encode  func(b []byte, v T) []byte
}

// serve writes the stream. It returns nil however the stream ends, once
// the status is written: the answer has been given.
func (e *eventStream[T]) serve(w http.ResponseWriter) error {
	defer e.release()
	log := httplog.Logger(e.ctx)
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would cancel the request's context in the
	// middle of the stream; the request has been read.
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		log.Warn(e.name+": cannot clear the read deadline; the server's ReadTimeout will end the stream", "err", err)
	}
	warned := false
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass the events on as they come
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
			if !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			if !warned { // a wrapper of the writer without Unwrap
				log.Warn(e.name+": cannot extend the write deadline; the server's WriteTimeout will end the stream", "err", err)
				warned = true
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := e.backlog(write); err != nil {
		log.Debug(e.name+": the client is gone", "err", err)
		return nil
	}
	beat := time.NewTicker(cmp.Or(e.s.Heartbeat, defaultHeartbeat))
	defer beat.Stop()
	// The stream lasts no longer than the token it was opened with: the
	// client comes back with a current one.
	expiry := time.NewTimer(e.caller.ExpiresAt.Sub(e.s.Now()))
	defer expiry.Stop()
	for {
		var b []byte
		select {
		case <-e.ctx.Done():
			return nil
		case <-e.sub.Done():
			log.Info(e.name+" ended", "reason", e.sub.Err())
			return nil
		case <-expiry.C:
			return nil
		case v := <-e.sub.C():
			if e.s.Revoked(e.caller) {
				log.Info(e.name + " ended: the caller's token was revoked")
				return nil
			}
			b = e.encode(b, v)
		case <-beat.C:
			b = append(b, ": keep-alive\n\n"...)
		}
		if len(b) == 0 {
			continue
		}
		if err := write(b); err != nil {
			log.Debug(e.name+": the client is gone", "err", err)
			return nil
		}
	}
}
