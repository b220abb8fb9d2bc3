package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/orgs"
)

// StreamMemberships answers the stream of the memberships: the ones
// changed after Last-Event-ID, or every one after an event reset, as this
// replica's copy holds them, then each batch the copy applies. Neither
// needs a database read per event: the copy is in memory, and a resume
// reads the change log once for which memberships to send. It refuses
// (503) while the replica drains, does not follow the log, or serves as
// many streams as it may.
func (o Orgs) StreamMemberships(ctx context.Context, req api.StreamMembershipsRequestObject) (api.StreamMembershipsResponseObject, error) {
	slot, err := o.Streams.open("organizations' change log", o.Memberships.Err())
	if err != nil {
		return nil, err
	}
	// The view and the subscription together: every batch applied after
	// the view comes through the subscription, none before it.
	view, sub := o.Memberships.Subscribe(streamBuffer)
	release := func() { sub.Close(); slot() }
	var changed []orgs.Membership // nil: every membership, after a reset
	if after := req.Params.LastEventID; after != nil {
		first, err := o.Queries.FirstOrgChange(ctx)
		if err != nil {
			release()
			return nil, err
		}
		if *after >= first-1 { // the log covers what came after
			rows, err := o.Queries.ListOrgChanges(ctx, *after)
			if err != nil {
				release()
				return nil, err
			}
			changed = []orgs.Membership{}
			type pair struct{ user, org int64 }
			seen := map[pair]bool{}
			for _, r := range rows {
				if r.UserID == nil || seen[pair{*r.UserID, r.OrgID}] {
					continue
				}
				seen[pair{*r.UserID, r.OrgID}] = true
				roles, _ := view.RolesIn(*r.UserID, r.OrgID)
				changed = append(changed, orgs.Membership{User: *r.UserID, Org: r.OrgID, Roles: roles})
			}
		}
	}
	return membershipStream{&eventStream[orgs.Batch]{
		name: "membership stream", ctx: ctx, s: o.Streams, sub: sub, release: release, caller: access.Caller(ctx),
		backlog: func(write func([]byte) error) error {
			var b []byte
			if changed == nil {
				b = appendSeqEvent(b, "reset", view.Seq(), false)
				for m := range view.All() {
					if b = appendMembership(b, m, 0); len(b) >= streamChunk {
						if err := write(b); err != nil {
							return err
						}
						b = b[:0]
					}
				}
			}
			for _, m := range changed {
				b = appendMembership(b, m, 0)
			}
			return write(appendSeqEvent(b, "caught-up", view.Seq(), true))
		},
		encode: func(b []byte, batch orgs.Batch) []byte {
			for i, m := range batch.Members {
				var id int64
				if i == len(batch.Members)-1 {
					id = batch.Seq
				}
				b = appendMembership(b, m, id)
			}
			return b
		},
	}}, nil
}

// membershipStream is StreamMemberships' 200.
type membershipStream struct {
	*eventStream[orgs.Batch]
}

// VisitStreamMembershipsResponse writes the stream.
func (s membershipStream) VisitStreamMembershipsResponse(w http.ResponseWriter) error {
	return s.serve(w)
}

// appendSeqEvent appends an event named name whose data is {"seq": seq},
// with seq as its id too when withID.
func appendSeqEvent(b []byte, name string, seq int64, withID bool) []byte {
	b = append(append(append(b, "event: "...), name...), '\n')
	if withID {
		b = strconv.AppendInt(append(b, "id: "...), seq, 10)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(append(b, "data: {\"seq\":"...), seq, 10)
	return append(b, "}\n\n"...)
}

// appendMembership appends an event membership with m as its data, and id
// as its id unless 0.
func appendMembership(b []byte, m orgs.Membership, id int64) []byte {
	b = append(b, "event: membership\n"...)
	if id != 0 {
		b = strconv.AppendInt(append(b, "id: "...), id, 10)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(append(b, "data: {\"org_id\":"...), m.Org, 10)
	b = strconv.AppendInt(append(b, ",\"user_id\":"...), m.User, 10)
	b = append(b, ",\"roles\":["...)
	for i, r := range m.Roles {
		if i > 0 {
			b = append(b, ',')
		}
		q, err := json.Marshal(r)
		if err != nil { // a string always marshals
			panic(err)
		}
		b = append(b, q...)
	}
	return append(b, "]}\n\n"...)
}
