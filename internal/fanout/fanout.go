// Package fanout hands what a replica applies from a change log to the
// streams that pass it on (subscribers), each in its own buffer, cutting
// off a subscriber that falls behind rather than waiting for it.
package fanout

import (
	"errors"
	"sync"
)

// Why a Subscription ends, as its Err reports, besides the error a Hub's
// owner cuts its subscribers off with (CutAll).
var (
	// ErrSlow: the subscriber did not take what was published fast enough.
	ErrSlow = errors.New("the subscriber fell behind")
	// ErrClosed: the subscriber closed it, or the hub was ended.
	ErrClosed = errors.New("the subscription was closed")
)

// Hub is the set of subscribers of one publisher. Its zero value is ready
// to use.
type Hub[T any] struct {
	mu    sync.Mutex
	subs  map[*Subscription[T]]struct{}
	ended bool // End was called
}

// Subscription receives what its Hub publishes from the moment of
// Subscribe on, in the order it is published. It is cut off rather than
// allowed to hold the publisher up.
type Subscription[T any] struct {
	h    *Hub[T]
	c    chan T
	done chan struct{}
	err  error // set before done is closed
}

// Subscribe returns a Subscription whose buffer holds up to buffer values
// (at least 1); one that falls further behind is cut off with ErrSlow. A
// refusal that is not nil cuts it off at once with that error, as does a
// Hub that was ended (ErrClosed). The caller must Close it.
func (h *Hub[T]) Subscribe(buffer int, refusal error) *Subscription[T] {
	s := &Subscription[T]{h: h, c: make(chan T, max(buffer, 1)), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*Subscription[T]]struct{}{}
	}
	h.subs[s] = struct{}{}
	switch {
	case h.ended:
		h.cut(s, ErrClosed)
	case refusal != nil:
		h.cut(s, refusal)
	}
	return s
}

// C delivers what is published. It is never closed: select on Done too.
func (s *Subscription[T]) C() <-chan T { return s.c }

// Done is closed when the subscription ends; Err says why.
func (s *Subscription[T]) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended, or nil while it runs.
func (s *Subscription[T]) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription; it may be called more than once.
func (s *Subscription[T]) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.cut(s, ErrClosed)
}

// cut ends s with err; the caller holds h.mu.
func (h *Hub[T]) cut(s *Subscription[T], err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.done)
}

// Publish hands v to every subscriber, cutting off with ErrSlow those
// whose buffer is full.
func (h *Hub[T]) Publish(v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- v:
		default:
			h.cut(s, ErrSlow)
		}
	}
}

// CutAll ends every subscription with err: what they wait for will not
// come (the publisher's feed is down, say).
func (h *Hub[T]) CutAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.cut(s, err)
	}
}

// End ends every subscription with ErrClosed, and those made later at
// once: the replica is shutting down.
func (h *Hub[T]) End() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	for s := range h.subs {
		h.cut(s, ErrClosed)
	}
}
