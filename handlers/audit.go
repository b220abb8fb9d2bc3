package handlers

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/internal/sessions"
)

// AuditTrail implements the audit tag: reading the audit trail, which
// package audit writes.
type AuditTrail struct {
	Pool     *pgxpool.Pool
	Sessions *sessions.Service
}

// ListAuditEvents returns a page of events, newest first, filtered by type,
// account and time range. Returns 400 for a cursor this API did not make.
func (a AuditTrail) ListAuditEvents(ctx context.Context, req api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	p := req.Params
	cur, after, err := page.Parse(p.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(p.Limit)
	var rows []db.AuditEvent
	err = asAdmin(ctx, a.Pool, a.Sessions, func(q *db.Queries) (err error) {
		rows, err = q.ListAuditEvents(ctx, db.ListAuditEventsParams{
			After: after, AfterAt: pgtype.Timestamptz{Time: cur.At, Valid: true}, AfterID: cur.ID,
			Type: p.Type, UserID: p.UserId, Since: optionalTime(p.Since), Until: optionalTime(p.Until),
			MaxRows: limit + 1,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	items, next := page.Of(rows, limit, func(r db.AuditEvent) page.Cursor { return page.Cursor{At: r.At.Time, ID: r.ID} }, auditEventBody)
	return api.ListAuditEvents200JSONResponse{Items: items, NextCursor: next}, nil
}

// optionalTime is t for a query, NULL when nil.
func optionalTime(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

// auditEventBody converts a row into the API's AuditEvent.
func auditEventBody(r db.AuditEvent) api.AuditEvent {
	return api.AuditEvent{
		Id: r.ID, At: r.At.Time, Type: r.Type, ActorUserId: r.ActorUserID, ActorClientId: r.ActorClientID,
		SubjectUserId: r.SubjectUserID, Subject: r.Subject, Detail: r.Detail, ClientAddr: r.ClientAddr,
		UserAgent: r.UserAgent, RequestId: r.RequestID, OperationId: r.OperationID,
	}
}
