// Package revocation keeps, in each replica's memory, what makes an access
// token invalid before it expires: an ended session, or a user whose
// tokens older than a version are refused. The per-request check reads only
// memory; the state comes from the revocation log in PostgreSQL (table
// revocations), loaded at start and followed through a dedicated LISTEN
// connection, and polled besides, so that a notification missed while
// reconnecting is caught up, and so that an engine without LISTEN/NOTIFY
// still gets every change.
//
// What a List applies it also hands to its subscribers (Subscribe): the
// revocation streams a replica serves to other services follow the log
// that way, without a database round trip per stream.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/fanout"
	"github.com/rolegate/rolegate/internal/pgfeed"
	"github.com/rolegate/rolegate/token"
)

// Channel is the NOTIFY channel of the revocation log.
const Channel = "rolegate_revocations"

// ErrRevoked is wrapped by Verifier's error for a token that verifies but
// was revoked.
var ErrRevoked = errors.New("revocation: the token was revoked")

// state is one immutable view of the revocations in force; List replaces it
// whole on every change, so that readers take no lock.
type state struct {
	sessions map[string]time.Time // ended session → when its entry may go
	users    map[int64]userMark
	clients  map[string]userMark  // machine clients, by client_id
	tokens   map[string]time.Time // single access tokens revoked, by jti
	next     time.Time            // the earliest expiry of an entry
}

type userMark struct {
	minVersion int64
	expires    time.Time
}

// raise returns m refusing versions below minVersion until at least exp.
func (m userMark) raise(minVersion int64, exp time.Time) userMark {
	m.minVersion = max(m.minVersion, minVersion)
	if exp.After(m.expires) {
		m.expires = exp
	}
	return m
}

// List is a replica's revocation state. Its zero value is not usable: make
// one with New.
type List struct {
	state atomic.Pointer[state]
	now   func() time.Time

	mu            sync.Mutex          // serialises writers
	last          int64               // the highest seq applied
	applied       map[int64]time.Time // seqs applied lately, so that re-reads are not published again
	appliedPruned time.Time
	subs          fanout.Hub[[]db.ListRevocationsRow]

	feedErr atomic.Pointer[error] // nil while the feed is up
	upOnce  sync.Once
	upCh    chan struct{} // closed when the feed first comes up

	created  time.Time
	caughtUp atomic.Int64 // UnixNano of the last successful CatchUp; 0 before
}

// New returns an empty List on the clock now (nil means time.Now), whose
// feed counts as down until Follow has caught up once.
func New(now func() time.Time) *List {
	if now == nil {
		now = time.Now
	}
	l := &List{now: now, upCh: make(chan struct{}), created: now(), applied: map[int64]time.Time{}}
	l.state.Store(&state{sessions: map[string]time.Time{}, users: map[int64]userMark{}, clients: map[string]userMark{}, tokens: map[string]time.Time{}})
	l.setDown(errors.New("the revocation feed has not started"))
	return l
}

// Revoked reports whether c belongs to an ended session, was revoked on
// its own (by jti), or is older than its user's (or machine client's) last
// revocation. It reads memory only and does not allocate.
func (l *List) Revoked(c *token.Claims) bool {
	s := l.state.Load()
	if c.SessionID != "" {
		if _, ok := s.sessions[c.SessionID]; ok {
			return true
		}
	}
	if len(s.tokens) > 0 {
		if _, ok := s.tokens[c.ID]; ok {
			return true
		}
	}
	var m userMark
	var ok bool
	if c.ClientID != "" {
		m, ok = s.clients[c.ClientID]
	} else {
		m, ok = s.users[c.UserID]
	}
	return ok && c.Version < m.minVersion
}

// Verifier is a token verifier that also refuses revoked tokens.
type Verifier struct {
	Tokens *token.Manager
	List   *List
}

// Verify verifies raw as Tokens does, then refuses it with an error
// wrapping token.ErrInvalid and ErrRevoked if List says it was revoked.
func (v Verifier) Verify(raw string) (*token.Claims, error) {
	c, err := v.Tokens.Verify(raw)
	if err != nil {
		return nil, err
	}
	if v.List.Revoked(c) {
		return nil, errRevoked
	}
	return c, nil
}

var errRevoked = fmt.Errorf("%w: %w", token.ErrInvalid, ErrRevoked)

// Apply merges rows of the log into the state and drops entries no token
// they concern outlived. CatchUp applies what it reads; Apply is for rows
// read otherwise.
func (l *List) Apply(rows []db.ListRevocationsRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	old := l.state.Load()
	if len(rows) == 0 && (old.next.IsZero() || now.Before(old.next)) {
		return
	}
	s := &state{sessions: maps.Clone(old.sessions), users: maps.Clone(old.users), clients: maps.Clone(old.clients), tokens: maps.Clone(old.tokens)}
	l.publish(rows, now)
	for _, r := range rows {
		l.last = max(l.last, r.Seq)
		exp := r.ExpiresAt.Time
		switch {
		case r.SessionID != nil:
			if exp.After(s.sessions[*r.SessionID]) {
				s.sessions[*r.SessionID] = exp
			}
		case r.TokenID != nil:
			if exp.After(s.tokens[*r.TokenID]) {
				s.tokens[*r.TokenID] = exp
			}
		case r.UserID != nil && r.MinVersion != nil:
			s.users[*r.UserID] = s.users[*r.UserID].raise(*r.MinVersion, exp)
		case r.ClientID != nil && r.MinVersion != nil:
			s.clients[*r.ClientID] = s.clients[*r.ClientID].raise(*r.MinVersion, exp)
		}
	}
	maps.DeleteFunc(s.sessions, func(_ string, exp time.Time) bool { return !exp.After(now) })
	maps.DeleteFunc(s.users, func(_ int64, m userMark) bool { return !m.expires.After(now) })
	maps.DeleteFunc(s.clients, func(_ string, m userMark) bool { return !m.expires.After(now) })
	maps.DeleteFunc(s.tokens, func(_ string, exp time.Time) bool { return !exp.After(now) })
	for _, m := range []map[string]time.Time{s.sessions, s.tokens} {
		for _, exp := range m {
			if s.next.IsZero() || exp.Before(s.next) {
				s.next = exp
			}
		}
	}
	for _, m := range s.users {
		if s.next.IsZero() || m.expires.Before(s.next) {
			s.next = m.expires
		}
	}
	for _, m := range s.clients {
		if s.next.IsZero() || m.expires.Before(s.next) {
			s.next = m.expires
		}
	}
	l.state.Store(s)
}

// CatchUp reads the log from where the List is, applies it, and returns
// any error of the database.
func (l *List) CatchUp(ctx context.Context, q *db.Queries) error {
	l.mu.Lock()
	after := l.last
	l.mu.Unlock()
	started := l.now()
	rows, err := q.ListRevocations(ctx, db.ListRevocationsParams{After: after, Now: pgtype.Timestamptz{Time: started, Valid: true}})
	if err != nil {
		return err
	}
	l.Apply(rows)
	// Concurrent catch-ups may finish out of order: keep the latest start.
	for ns := l.caughtUp.Load(); ns < started.UnixNano(); ns = l.caughtUp.Load() {
		if l.caughtUp.CompareAndSwap(ns, started.UnixNano()) {
			break
		}
	}
	return nil
}

// CaughtUp returns when the last successful CatchUp started reading the
// log (the state holds every revocation logged before then), or the zero
// Time if none has succeeded.
func (l *List) CaughtUp() time.Time {
	if ns := l.caughtUp.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Lag returns how far behind the log the state may be: the time since the
// last successful CatchUp started, or since New if none has. While the
// feed is up it stays within about its poll interval (1s by default).
func (l *List) Lag() time.Duration {
	since := l.created
	if t := l.CaughtUp(); !t.IsZero() {
		since = t
	}
	return max(0, l.now().Sub(since))
}

// Err returns why the feed is down, or nil while it is up: readiness
// reports it, since a replica that misses revocations must leave the load
// balancer's rotation while it keeps serving with what it knows.
func (l *List) Err() error {
	if p := l.feedErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *List) setDown(err error) { l.feedErr.Store(&err) }
func (l *List) setUp() {
	l.feedErr.Store(nil)
	l.upOnce.Do(func() { close(l.upCh) })
}

// Up is closed once the feed has first come up.
func (l *List) Up() <-chan struct{} { return l.upCh }

// Feed is how a List follows the log.
type Feed struct {
	// Pool reads the log.
	Pool *pgxpool.Pool
	// Poll is how often the log is read without a notification (default
	// 1s; 250ms when the engine has no LISTEN).
	Poll time.Duration
	// Logger reports the feed going down and coming back.
	Logger *slog.Logger
}

// Follow keeps l current until ctx ends: it catches up, LISTENs on Channel
// through a connection of its own and catches up on every notification and
// every Poll, and reconnects when the connection fails (package pgfeed).
// While it cannot read the log, Err says why.
func (l *List) Follow(ctx context.Context, f Feed) {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pgfeed.Follow(ctx, f.Pool, f.Poll, log, pgfeed.Log{Name: "revocation feed", Channel: Channel, CatchUp: l.CatchUp,
		Up: func() { l.up(log) }, Down: func(err error) { l.down(log, err) }})
}

func (l *List) down(log *slog.Logger, err error) {
	if l.Err() == nil {
		log.Error("revocation feed is down: revocations made elsewhere are not seen", "err", err)
	}
	l.setDown(err)
	// A subscriber would wait for rows that do not come: it had better
	// follow another replica.
	// Under l.mu, as Subscribe checks the feed: none slips between.
	l.mu.Lock()
	l.subs.CutAll(ErrFeedDown)
	l.mu.Unlock()
}

func (l *List) up(log *slog.Logger) {
	if err := l.Err(); err != nil {
		log.Info("revocation feed is up", "was", err.Error())
		l.setUp()
	}
}
