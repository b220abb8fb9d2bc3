package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/rolegate/rolegate/internal/orgs"
)

// maxRoleLists bounds the distinct lists of roles a membershipLog shares
// among the memberships it decodes; past it the cache starts again.
const maxRoleLists = 10_000

// membershipLog is the memberships feed's state: a copy of every
// membership (orgs.Memberships, as rolegate's replicas keep), loaded from
// the stream's reset and kept current by its changes.
type membershipLog struct {
	m         *orgs.Memberships
	last      int64 // the seq the copy is current to
	synced    bool  // the copy is whole: a reset has been caught up
	resetting bool  // between a reset and its caught-up
	fresh     []orgs.Membership
	pending   []orgs.Membership
	roles     map[string][]string // role lists decoded, by their JSON
}

func newMembershipLog(m *orgs.Memberships) *membershipLog {
	return &membershipLog{m: m, roles: map[string][]string{}}
}

// prepare resumes from the seq the copy is current to, or asks for every
// membership again (no Last-Event-ID).
func (l *membershipLog) prepare(_ context.Context, resume bool) (string, error) {
	if resume && l.synced && !l.resetting {
		return strconv.FormatInt(l.last, 10), nil
	}
	return "", nil
}

func (l *membershipLog) event(name, id string, data []byte) (bool, error) {
	switch name {
	case "reset":
		// The copy stays in use until the reset is complete.
		l.resetting, l.synced = true, false
		l.fresh, l.pending = l.fresh[:0], l.pending[:0]
	case "membership":
		m, err := l.decode(data)
		if err != nil {
			return false, err
		}
		if l.resetting {
			l.fresh = append(l.fresh, m)
			return false, nil
		}
		l.pending = append(l.pending, m)
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && id != "" {
			l.flush()
			l.last = max(l.last, n)
		}
	case "caught-up":
		var c struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(data, &c); err != nil || c.Seq == nil {
			return false, fmt.Errorf("a caught-up event without its seq: %q", data)
		}
		if l.resetting {
			l.m.Replace(*c.Seq, l.fresh)
			l.fresh, l.resetting, l.synced = nil, false, true
		} else {
			l.flush()
		}
		l.last = *c.Seq
		return l.synced, nil
	}
	return false, nil
}

// decode reads an event membership's data, sharing its list of roles with
// the memberships decoded before that have the same.
func (l *membershipLog) decode(data []byte) (orgs.Membership, error) {
	var d struct {
		Org   int64           `json:"org_id"`
		User  int64           `json:"user_id"`
		Roles json.RawMessage `json:"roles"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Org <= 0 || d.User <= 0 || d.Roles == nil {
		return orgs.Membership{}, fmt.Errorf("an event that is not a membership: %q", data)
	}
	roles, ok := l.roles[string(d.Roles)]
	if !ok {
		if err := json.Unmarshal(d.Roles, &roles); err != nil {
			return orgs.Membership{}, fmt.Errorf("an event that is not a membership: %q", data)
		}
		if len(l.roles) >= maxRoleLists {
			clear(l.roles)
		}
		l.roles[string(d.Roles)] = roles
	}
	return orgs.Membership{User: d.User, Org: d.Org, Roles: roles}, nil
}

// flush applies the changes received, unless a reset is under way (its
// caught-up replaces the copy).
func (l *membershipLog) flush() {
	if !l.resetting && len(l.pending) > 0 {
		l.m.Apply(l.last, l.pending...)
		l.pending = l.pending[:0]
	}
}

func (l *membershipLog) comment() {}
