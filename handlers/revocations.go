package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Revocations serves the revocation log to other services that accept
// rolegate's tokens (resource servers): a snapshot read from the database,
// and a stream of server-sent events that reads the database once, for
// what the client missed, and then passes on what this replica's List
// applies as it follows the log, so that a stream costs no database work
// per event.
type Revocations struct {
	Queries *db.Queries
	// List is this replica's revocation state, whose applied rows streams
	// subscribe to.
	List *revocation.List
	// Streams holds a slot per stream served; a stream finding it full is
	// refused with 503. Its capacity is the bound.
	Streams chan struct{}
	// Heartbeat is how often a stream sends a comment when nothing else
	// happens; 0 means 15 seconds.
	Heartbeat time.Duration
	// Now is the clock of entries' expiry and tokens' exp.
	Now func() time.Time
	// Draining, once true, refuses new streams; the List's
	// EndSubscriptions ends those open.
	Draining *atomic.Bool
}

// Stream bounds and timing.
const (
	defaultHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds each write of a stream: a client that
	// takes no bytes for that long is cut off. Each write sets it anew,
	// past the server's WriteTimeout, which would otherwise end the stream.
	streamWriteTimeout = 30 * time.Second
	// streamBuffer is how many batches of rows a stream may be behind the
	// List before it is cut off.
	streamBuffer = 64
)

// GetRevocations returns every entry of the revocation log still of use,
// and the highest seq among them, to follow the stream from.
func (r Revocations) GetRevocations(ctx context.Context, _ api.GetRevocationsRequestObject) (api.GetRevocationsResponseObject, error) {
	rows, err := r.Queries.ListRevocations(ctx, db.ListRevocationsParams{After: 0, Now: pgtype.Timestamptz{Time: r.Now(), Valid: true}})
	if err != nil {
		return nil, err
	}
	snap := api.RevocationSnapshot{Entries: make([]api.RevocationEntry, 0, len(rows))}
	for _, row := range rows {
		snap.Entries = append(snap.Entries, revocationEntry(row))
		snap.Seq = max(snap.Seq, row.Seq)
	}
	return api.GetRevocations200JSONResponse{Body: snap, Headers: api.GetRevocations200ResponseHeaders{CacheControl: "no-store"}}, nil
}

// StreamRevocations answers the stream of the revocation log: the entries
// after Last-Event-ID (all of them in force without it), read once from
// the database, then those this replica applies. It refuses (503) while
// the replica drains, does not follow the log, or serves as many streams
// as it may.
func (r Revocations) StreamRevocations(ctx context.Context, req api.StreamRevocationsRequestObject) (api.StreamRevocationsResponseObject, error) {
	unavailable := func(detail, retry string) error {
		return &problem.Error{Kind: problem.Unavailable, Detail: detail, Header: http.Header{"Retry-After": {retry}}}
	}
	if r.Draining != nil && r.Draining.Load() {
		return nil, unavailable("This replica is shutting down.", "1")
	}
	if err := r.List.Err(); err != nil {
		return nil, unavailable("This replica does not follow the revocation log now.", "5")
	}
	select {
	case r.Streams <- struct{}{}:
	default:
		return nil, unavailable("This replica serves as many revocation streams as it may.", "5")
	}
	// Subscribed before the log is read: what commits meanwhile comes
	// through the subscription, if not through the read; twice is harmless.
	sub := r.List.Subscribe(streamBuffer)
	release := func() {
		sub.Close()
		<-r.Streams
	}
	var after int64
	if req.Params.LastEventID != nil {
		after = *req.Params.LastEventID
	}
	backlog, err := r.Queries.ListRevocations(ctx, db.ListRevocationsParams{After: after, Now: pgtype.Timestamptz{Time: r.Now(), Valid: true}})
	if err != nil {
		release()
		return nil, err
	}
	return &revocationStream{
		ctx: ctx, r: r, sub: sub, release: release, backlog: backlog, after: after,
		caller: access.Caller(ctx),
	}, nil
}

// revocationStream is StreamRevocations' 200: server-sent events written
// as they come, until the stream has to end.
type revocationStream struct {
	ctx     context.Context
	r       Revocations
	sub     *revocation.Subscription
	release func()
	backlog []db.ListRevocationsRow
	after   int64
	caller  *token.Claims
}

// VisitStreamRevocationsResponse writes the stream. It returns nil however
// the stream ends, once the status is written: the answer has been given.
func (s *revocationStream) VisitStreamRevocationsResponse(w http.ResponseWriter) error {
	defer s.release()
	log := httplog.Logger(s.ctx)
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would cancel the request's context in the
	// middle of the stream; the request has been read.
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		log.Warn("revocation stream: cannot clear the read deadline; the server's ReadTimeout will end the stream", "err", err)
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
				log.Warn("revocation stream: cannot extend the write deadline; the server's WriteTimeout will end the stream", "err", err)
				warned = true
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	seq := s.after
	for _, row := range s.backlog {
		seq = max(seq, row.Seq)
	}
	b := appendEvents(nil, s.backlog)
	b = append(append(append(b, "event: caught-up\ndata: {\"seq\":"...), strconv.FormatInt(seq, 10)...), "}\n\n"...)
	if err := write(b); err != nil {
		log.Debug("revocation stream: the client is gone", "err", err)
		return nil
	}
	beat := time.NewTicker(cmp.Or(s.r.Heartbeat, defaultHeartbeat))
	defer beat.Stop()
	// The stream lasts no longer than the token it was opened with: the
	// client comes back with a current one.
	expiry := time.NewTimer(s.caller.ExpiresAt.Sub(s.r.Now()))
	defer expiry.Stop()
	for {
		var b []byte
		select {
		case <-s.ctx.Done():
			return nil
		case <-s.sub.Done():
			log.Info("revocation stream ended", "reason", s.sub.Err())
			return nil
		case <-expiry.C:
			return nil
		case rows := <-s.sub.Rows():
			if s.r.List.Revoked(s.caller) {
				log.Info("revocation stream ended: the caller's token was revoked")
				return nil
			}
			b = appendEvents(b, rows)
		case <-beat.C:
			b = append(b, ": keep-alive\n\n"...)
		}
		if err := write(b); err != nil {
			log.Debug("revocation stream: the client is gone", "err", err)
			return nil
		}
	}
}

// appendEvents appends an event "revocation" per row, with the row's seq
// as its id and the entry as its data.
func appendEvents(b []byte, rows []db.ListRevocationsRow) []byte {
	for _, row := range rows {
		data, err := json.Marshal(revocationEntry(row))
		if err != nil { // an entry is numbers, strings and a time
			panic(err)
		}
		b = append(b, "event: revocation\nid: "...)
		b = strconv.AppendInt(b, row.Seq, 10)
		b = append(append(append(b, "\ndata: "...), data...), "\n\n"...)
	}
	return b
}

// revocationEntry is a row of the revocation log as the API shows it.
func revocationEntry(r db.ListRevocationsRow) api.RevocationEntry {
	e := api.RevocationEntry{Seq: r.Seq, ExpiresAt: r.ExpiresAt.Time.UTC(), MinVersion: r.MinVersion}
	switch {
	case r.SessionID != nil:
		id := uuid.MustParse(*r.SessionID) // PostgreSQL's text of a uuid column
		e.Kind, e.SessionId = api.RevocationEntryKindSession, &id
	case r.TokenID != nil:
		e.Kind, e.TokenId = api.RevocationEntryKindToken, r.TokenID
	case r.UserID != nil:
		e.Kind, e.UserId = api.RevocationEntryKindUser, r.UserID
	case r.ClientID != nil:
		e.Kind, e.ClientId = api.RevocationEntryKindClient, r.ClientID
	}
	return e
}
