package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/revocation"
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
	// Streams bounds and times the streams.
	Streams *Streams
	// Now is the clock of entries' expiry.
	Now func() time.Time
}

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
	slot, err := r.Streams.open("revocation log", r.List.Err())
	if err != nil {
		return nil, err
	}
	// Subscribed before the log is read: what commits meanwhile comes
	// through the subscription, if not through the read; twice is harmless.
	sub := r.List.Subscribe(streamBuffer)
	release := func() { sub.Close(); slot() }
	var after int64
	if req.Params.LastEventID != nil {
		after = *req.Params.LastEventID
	}
	backlog, err := r.Queries.ListRevocations(ctx, db.ListRevocationsParams{After: after, Now: pgtype.Timestamptz{Time: r.Now(), Valid: true}})
	if err != nil {
		release()
		return nil, err
	}
	return revocationStream{&eventStream[[]db.ListRevocationsRow]{
		name: "revocation stream", ctx: ctx, s: r.Streams, sub: sub, release: release, caller: access.Caller(ctx),
		backlog: func(write func([]byte) error) error {
			seq := after
			for _, row := range backlog {
				seq = max(seq, row.Seq)
			}
			b := appendEvents(nil, backlog)
			b = append(append(append(b, "event: caught-up\ndata: {\"seq\":"...), strconv.FormatInt(seq, 10)...), "}\n\n"...)
			return write(b)
		},
		encode: appendEvents,
	}}, nil
}

// revocationStream is StreamRevocations' 200.
type revocationStream struct {
	*eventStream[[]db.ListRevocationsRow]
}

// VisitStreamRevocationsResponse writes the stream.
func (s revocationStream) VisitStreamRevocationsResponse(w http.ResponseWriter) error {
	return s.serve(w)
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
