package sdk_test

import (
	"context"
	"testing"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/sdk"
)

// TestOrgsThroughTheSDK: an organization, a member and a shared note
// through the Go client's typed calls; a non-member's typed answer is the
// 404 problem, a viewer's create the 403 one naming the org roles.
func TestOrgsThroughTheSDK(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	owner := e.CreateUser(t, "owner@example.com", "user")
	viewer := e.CreateUser(t, "viewer@example.com", "user")
	outsider := e.CreateUser(t, "outsider@example.com", "user")
	ctx := context.Background()
	httpc := api.WithHTTPClient(apitest.HTTPClient(t))
	as := func(u apitest.User) *api.ClientWithResponses {
		c, err := sdk.Login(ctx, e.URL, u.Email, u.Password, httpc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oc, vc, xc := as(owner), as(viewer), as(outsider)

	org, err := oc.CreateOrgWithResponse(ctx, api.CreateOrgJSONRequestBody{Slug: "acme", Name: "Acme"})
	if err != nil || org.JSON201 == nil {
		t.Fatalf("CreateOrg: %v %s", err, org.Body)
	}
	id := org.JSON201.Id
	m, err := oc.SetOrgMemberWithResponse(ctx, id, viewer.ID, api.SetOrgMemberJSONRequestBody{Roles: []string{"viewer"}})
	if err != nil || m.JSON200 == nil || m.JSON200.Email != viewer.Email {
		t.Fatalf("SetOrgMember: %v %s", err, m.Body)
	}
	n, err := oc.CreateOrgNoteWithResponse(ctx, id, api.CreateOrgNoteJSONRequestBody{DocumentSrc: "q3.pdf", Title: "Plan", Body: "Shared."})
	if err != nil || n.JSON201 == nil || n.JSON201.OwnerId != owner.ID {
		t.Fatalf("CreateOrgNote: %v %s", err, n.Body)
	}
	list, err := vc.ListOrgNotesWithResponse(ctx, id, nil)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 1 {
		t.Fatalf("ListOrgNotes as the viewer: %v %s", err, list.Body)
	}
	denied, err := vc.CreateOrgNoteWithResponse(ctx, id, api.CreateOrgNoteJSONRequestBody{DocumentSrc: "q3.pdf", Title: "No", Body: "No."})
	if err != nil || denied.ApplicationproblemJSON403 == nil || denied.ApplicationproblemJSON403.RequiredRoles == nil {
		t.Errorf("a viewer's create: %v %d %s, want the 403 problem", err, denied.StatusCode(), denied.Body)
	}
	hidden, err := xc.GetOrgWithResponse(ctx, id)
	if err != nil || hidden.ApplicationproblemJSON404 == nil {
		t.Errorf("GetOrg as no member: %v %d, want the 404 problem", err, hidden.StatusCode())
	}
}
