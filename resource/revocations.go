package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/revocation"
)

// revocationLog is the revocation feed's state: a revocation.List, loaded
// from a snapshot and kept current from the stream.
type revocationLog struct {
	list        *revocation.List
	creds       *credentials
	snapshotURL string
	logger      *slog.Logger
	last        int64 // the seq the state is current to
	pending     []db.ListRevocationsRow
}

// prepare takes a snapshot unless the connection resumes; it sends the
// seq the state is current to.
func (l *revocationLog) prepare(ctx context.Context, resume bool) (string, error) {
	if !resume {
		if err := l.snapshot(ctx); err != nil {
			return "", err
		}
	}
	return strconv.FormatInt(l.last, 10), nil
}

// snapshot replaces what the state is current to with rolegate's snapshot.
func (l *revocationLog) snapshot(ctx context.Context) error {
	var snap struct {
		Seq     int64   `json:"seq"`
		Entries []entry `json:"entries"`
	}
	if err := l.creds.get(ctx, l.snapshotURL, maxSnapshotSize, &snap); err != nil {
		return fmt.Errorf("resource: the revocation snapshot: %w", err)
	}
	rows := make([]db.ListRevocationsRow, 0, len(snap.Entries))
	for _, e := range snap.Entries {
		if r, ok := l.row(e); ok {
			rows = append(rows, r)
		}
	}
	l.list.Apply(rows)
	l.last = snap.Seq
	return nil
}

func (l *revocationLog) event(name, id string, data []byte) (bool, error) {
	switch name {
	case "revocation":
		var e entry
		if err := json.Unmarshal(data, &e); err != nil {
			return false, fmt.Errorf("an event that is not an entry: %w", err)
		}
		if r, ok := l.row(e); ok {
			l.pending = append(l.pending, r)
		}
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			l.last = n
		}
	case "caught-up":
		l.flush()
		return true, nil
	}
	return false, nil
}

func (l *revocationLog) flush() {
	if len(l.pending) > 0 {
		l.list.Apply(l.pending)
		l.pending = l.pending[:0]
	}
}

// comment drops entries whose tokens have all expired.
func (l *revocationLog) comment() { l.list.Apply(nil) }

// entry is a RevocationEntry of rolegate's spec.
type entry struct {
	Seq        int64     `json:"seq"`
	Kind       string    `json:"kind"`
	SessionID  *string   `json:"session_id"`
	UserID     *int64    `json:"user_id"`
	ClientID   *string   `json:"client_id"`
	TokenID    *string   `json:"token_id"`
	MinVersion *int64    `json:"min_version"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// row is e as a row of the log, for List.Apply; an entry that does not
// hold what its kind needs is logged and skipped.
func (l *revocationLog) row(e entry) (db.ListRevocationsRow, bool) {
	r := db.ListRevocationsRow{Seq: e.Seq, ExpiresAt: pgtype.Timestamptz{Time: e.ExpiresAt, Valid: true}}
	switch {
	case e.Kind == "session" && e.SessionID != nil:
		r.SessionID = e.SessionID
	case e.Kind == "token" && e.TokenID != nil:
		r.TokenID = e.TokenID
	case e.Kind == "user" && e.UserID != nil && e.MinVersion != nil:
		r.UserID, r.MinVersion = e.UserID, e.MinVersion
	case e.Kind == "client" && e.ClientID != nil && e.MinVersion != nil:
		r.ClientID, r.MinVersion = e.ClientID, e.MinVersion
	default:
		l.logger.Warn("rolegate's revocation feed: an entry of an unknown kind, or without its subject, skipped", "seq", e.Seq, "kind", e.Kind)
		return r, false
	}
	return r, true
}
