package resource

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/orgs"
)

// The memberships log applies a stream's events: a reset's memberships
// replace the copy only at caught-up (the copy serves until then), changes
// apply as a batch ends, a resume asks from the last id only once a reset
// is whole, and events it cannot read end the stream.
func TestMembershipLog(t *testing.T) {
	type ev struct{ name, id, data string }
	type member struct {
		user, org int64
		roles     string // comma-separated; "" for no member
	}
	tests := []struct {
		name    string
		events  []ev
		wantErr string
		want    []member
		resume  string // prepare(resume: true) after the events
	}{{
		name: "a reset, then changes",
		events: []ev{
			{"reset", "", `{"seq":4}`},
			{"membership", "", `{"org_id":1,"user_id":2,"roles":["viewer"]}`},
			{"membership", "", `{"org_id":1,"user_id":3,"roles":["owner"]}`},
			{"caught-up", "4", `{"seq":4}`},
			{"membership", "", `{"org_id":1,"user_id":2,"roles":["viewer","editor"]}`},
			{"membership", "6", `{"org_id":1,"user_id":3,"roles":[]}`},
		},
		want:   []member{{2, 1, "editor,viewer"}, {3, 1, ""}},
		resume: "6",
	}, {
		name: "a reset not caught up keeps the copy, and is asked for again",
		events: []ev{
			{"reset", "", `{"seq":1}`},
			{"membership", "", `{"org_id":1,"user_id":2,"roles":["viewer"]}`},
			{"caught-up", "1", `{"seq":1}`},
			{"reset", "", `{"seq":9}`},
			{"membership", "", `{"org_id":5,"user_id":5,"roles":["owner"]}`},
		},
		want:   []member{{2, 1, "viewer"}, {5, 5, ""}},
		resume: "",
	}, {
		name: "a second reset drops what the first had",
		events: []ev{
			{"reset", "", `{"seq":1}`},
			{"membership", "", `{"org_id":1,"user_id":2,"roles":["viewer"]}`},
			{"caught-up", "1", `{"seq":1}`},
			{"reset", "", `{"seq":9}`},
			{"membership", "", `{"org_id":5,"user_id":5,"roles":["owner"]}`},
			{"caught-up", "9", `{"seq":9}`},
		},
		want:   []member{{2, 1, ""}, {5, 5, "owner"}},
		resume: "9",
	}, {
		name:    "a membership without its organization",
		events:  []ev{{"reset", "", `{"seq":1}`}, {"membership", "", `{"user_id":2,"roles":["viewer"]}`}},
		wantErr: "not a membership",
	}, {
		name:    "roles that are not a list",
		events:  []ev{{"reset", "", `{"seq":1}`}, {"membership", "", `{"org_id":1,"user_id":2,"roles":"viewer"}`}},
		wantErr: "not a membership",
	}, {
		name:    "a caught-up without its seq",
		events:  []ev{{"caught-up", "", `{}`}},
		wantErr: "without its seq",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := orgs.NewMemberships(nil)
			l := newMembershipLog(m)
			if id, _ := l.prepare(context.Background(), true); id != "" {
				t.Errorf("before any reset, a resume asks from %q", id)
			}
			var err error
			for _, e := range tt.events {
				if _, err = l.event(e.name, e.id, []byte(e.data)); err != nil {
					break
				}
				l.flush()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				roles, ok := m.RolesIn(w.user, w.org)
				if got := strings.Join(roles, ","); got != w.roles || ok != (w.roles != "") {
					t.Errorf("user %d in org %d: %q %v, want %q", w.user, w.org, got, ok, w.roles)
				}
			}
			if id, _ := l.prepare(context.Background(), true); id != tt.resume {
				t.Errorf("a resume asks from %q, want %q", id, tt.resume)
			}
			if id, _ := l.prepare(context.Background(), false); id != "" {
				t.Errorf("after a gap, it asks from %q, want every membership", id)
			}
		})
	}
}

// Memberships decoded share their lists of roles.
func TestMembershipLogSharesRoles(t *testing.T) {
	l := newMembershipLog(orgs.NewMemberships(nil))
	a, err := l.decode([]byte(`{"org_id":1,"user_id":2,"roles":["editor","viewer"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.decode([]byte(`{"org_id":3,"user_id":4,"roles":["editor","viewer"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Roles, b.Roles) || &a.Roles[0] != &b.Roles[0] {
		t.Errorf("two decodings of the same roles do not share them: %v %v", a.Roles, b.Roles)
	}
}
