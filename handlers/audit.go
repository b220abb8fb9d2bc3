package handlers

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/page"
)

// AuditTrail implements the audit tag: reading the audit trail, which
// package audit writes.
type AuditTrail struct {
	Queries *db.Queries
}

// ListAuditEvents returns a page of events, newest first, filtered by type,
// account and time range. Returns 400 for a cursor this API did not make.
// Like every admin read, it checks that the caller still is an enabled
// admin (readAsAdmin), with no transaction and no lock.
func (a AuditTrail) ListAuditEvents(ctx context.Context, req api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	p := req.Params
	cur, after, err := page.Parse(p.Cursor)
	if err != nil {
		return nil, err
	}
	if err := readAsAdmin(ctx, a.Queries); err != nil {
		return nil, err
	}
	at, id := before(cur, after)
	since, until := timeBound(p.Since, pgtype.NegativeInfinity), timeBound(p.Until, pgtype.Infinity)
	limit := page.Limit(p.Limit) + 1 // one more tells whether a next page exists
	var rows []db.AuditEvent
	switch {
	case p.UserId != nil:
		rows, err = a.Queries.ListAuditEventsByUser(ctx, db.ListAuditEventsByUserParams{
			UserID: *p.UserId, Type: p.Type, BeforeAt: at, BeforeID: id, Since: since, Until: until, MaxRows: limit,
		})
	case p.Type != nil:
		rows, err = a.Queries.ListAuditEventsByType(ctx, db.ListAuditEventsByTypeParams{
			Type: *p.Type, BeforeAt: at, BeforeID: id, Since: since, Until: until, MaxRows: limit,
		})
	default:
		rows, err = a.Queries.ListAuditEvents(ctx, db.ListAuditEventsParams{
			BeforeAt: at, BeforeID: id, Since: since, Until: until, MaxRows: limit,
		})
	}
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, limit-1, func(r db.AuditEvent) page.Cursor { return page.Cursor{At: r.At.Time, ID: r.ID} }, auditEventBody)
	return api.ListAuditEvents200JSONResponse{Items: items, NextCursor: next}, nil
}

// timeBound is t for a query, or the infinity inf when nil.
func timeBound(t *time.Time, inf pgtype.InfinityModifier) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{InfinityModifier: inf, Valid: true}
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
