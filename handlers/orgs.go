package handlers

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/problem"
)

// Orgs implements the operations of organizations, their members and
// roles, and their notes. The gate has checked the caller's role in the
// organization (x-org); the handlers check only what the spec cannot say:
// that a member removing another is an owner, and that a note's author
// may change it.
type Orgs struct {
	Store   *orgs.Store
	Queries *db.Queries
	Audit   *audit.Log
	// Memberships is this replica's copy, which the membership streams
	// pass on.
	Memberships *orgs.Memberships
	// Streams bounds and times the streams.
	Streams *Streams
}

// asOwner returns the store for a change that the gate admitted an owner
// of the organization to, or the global admin: unless the caller's token
// holds admin, the change checks that the caller is still an owner, in its
// transaction (Store.AsOwner).
func (o Orgs) asOwner(ctx context.Context) *orgs.Store {
	c := access.Caller(ctx)
	if slices.Contains(c.Roles, "admin") {
		return o.Store
	}
	return o.Store.AsOwner(c.UserID)
}

// orgError maps the refusals of package orgs to the API's problems.
func orgError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, orgs.ErrNotFound):
		return problem.New(problem.NotFound, "There is no such organization or member.")
	case errors.Is(err, orgs.ErrSlugTaken):
		return problem.New(problem.Conflict, "Another organization has this slug.")
	case errors.Is(err, orgs.ErrRoleExists):
		return problem.New(problem.Conflict, "The organization has this role already.")
	case errors.Is(err, orgs.ErrTooManyRoles):
		return problem.New(problem.Conflict, "The organization has as many roles as it may.")
	case errors.Is(err, orgs.ErrNotOwner):
		return problem.InsufficientScope("The caller is no longer an owner of the organization.", []string{"org:" + orgs.Owner, "admin"})
	case errors.Is(err, orgs.ErrLastOwner):
		return problem.New(problem.Conflict, "An organization keeps at least one owner: make another member owner first.")
	case errors.Is(err, orgs.ErrInvalidSlug):
		return &problem.Error{Kind: problem.Invalid, Detail: "A slug is 2 to 64 of a-z, 0-9 and -.", Fields: []api.FieldError{{Field: "body.slug", Message: "is not a slug"}}}
	case errors.Is(err, orgs.ErrInvalidName):
		return &problem.Error{Kind: problem.Invalid, Detail: "A name is 1 to 200 characters.", Fields: []api.FieldError{{Field: "body.name", Message: "is not a name"}}}
	case errors.Is(err, orgs.ErrNoRoles), errors.Is(err, orgs.ErrUnknownRole), errors.Is(err, orgs.ErrInvalidRole):
		return &problem.Error{Kind: problem.Invalid, Detail: "The roles must be the organization's: owner, editor, viewer, or one created for it.",
			Fields: []api.FieldError{{Field: "body.roles", Message: "names a role the organization does not have"}}}
	}
	return dberr.Translate(err, "")
}

func orgBody(o orgs.Org) api.Org {
	return api.Org{Id: o.ID, Slug: o.Slug, Name: o.Name, CreatedAt: o.CreatedAt}
}

func orgSubject(id int64) string { return "org:" + strconv.FormatInt(id, 10) }

// CreateOrg creates an organization whose owner is the caller.
func (o Orgs) CreateOrg(ctx context.Context, req api.CreateOrgRequestObject) (api.CreateOrgResponseObject, error) {
	org, err := o.Store.Create(ctx, access.Caller(ctx).UserID, req.Body.Slug, req.Body.Name)
	if err != nil {
		return nil, orgError(err)
	}
	o.Audit.Record(ctx, audit.Event{Type: audit.OrgCreated, Subject: orgSubject(org.ID), Detail: org.Slug})
	return api.CreateOrg201JSONResponse(orgBody(org)), nil
}

// ListMyOrgs lists the caller's organizations.
func (o Orgs) ListMyOrgs(ctx context.Context, req api.ListMyOrgsRequestObject) (api.ListMyOrgsResponseObject, error) {
	cur, _, err := page.Parse(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	rows, err := o.Store.ListFor(ctx, access.Caller(ctx).UserID, cur.ID, limit+1)
	if err != nil {
		return nil, orgError(err)
	}
	items, next := page.Of(rows, limit, func(r orgs.Org) page.Cursor { return page.Cursor{ID: r.ID} }, orgBody)
	return api.ListMyOrgs200JSONResponse{Items: items, NextCursor: next}, nil
}

// GetOrg returns an organization.
func (o Orgs) GetOrg(ctx context.Context, req api.GetOrgRequestObject) (api.GetOrgResponseObject, error) {
	org, err := o.Store.Get(ctx, req.OrgId)
	if err != nil {
		return nil, orgError(err)
	}
	return api.GetOrg200JSONResponse(orgBody(org)), nil
}

// DeleteOrg deletes an organization, with its members, roles and notes.
func (o Orgs) DeleteOrg(ctx context.Context, req api.DeleteOrgRequestObject) (api.DeleteOrgResponseObject, error) {
	if err := o.asOwner(ctx).Delete(ctx, req.OrgId); err != nil {
		return nil, orgError(err)
	}
	o.Audit.Record(ctx, audit.Event{Type: audit.OrgDeleted, Subject: orgSubject(req.OrgId)})
	return api.DeleteOrg204Response{}, nil
}

func memberBody(m orgs.Member) api.Member {
	return api.Member{UserId: m.UserID, Email: m.Email, Roles: nonNil(m.Roles)}
}

// ListOrgMembers lists an organization's members.
func (o Orgs) ListOrgMembers(ctx context.Context, req api.ListOrgMembersRequestObject) (api.ListOrgMembersResponseObject, error) {
	cur, _, err := page.Parse(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	rows, err := o.Store.Members(ctx, req.OrgId, cur.ID, limit+1)
	if err != nil {
		return nil, orgError(err)
	}
	items, next := page.Of(rows, limit, func(m orgs.Member) page.Cursor { return page.Cursor{ID: m.UserID} }, memberBody)
	return api.ListOrgMembers200JSONResponse{Items: items, NextCursor: next}, nil
}

// SetOrgMember adds a member, or sets a member's roles.
func (o Orgs) SetOrgMember(ctx context.Context, req api.SetOrgMemberRequestObject) (api.SetOrgMemberResponseObject, error) {
	previous, err := o.asOwner(ctx).SetMember(ctx, req.OrgId, req.UserId, req.Body.Roles)
	if err != nil {
		return nil, orgError(err)
	}
	ev := audit.Event{Type: audit.MemberRolesChanged, SubjectUserID: req.UserId, Subject: orgSubject(req.OrgId),
		Detail: "roles " + strings.Join(req.Body.Roles, ",")}
	if previous == nil {
		ev.Type = audit.MemberAdded
	}
	o.Audit.Record(ctx, ev)
	roles := slices.Sorted(slices.Values(req.Body.Roles))
	email := ""
	if u, err := o.Queries.GetSessionUser(ctx, req.UserId); err == nil {
		email = u.Email
	}
	return api.SetOrgMember200JSONResponse{UserId: req.UserId, Email: email, Roles: roles}, nil
}

// RemoveOrgMember removes a member: an owner (or an administrator) may
// remove anyone, a member only themselves.
func (o Orgs) RemoveOrgMember(ctx context.Context, req api.RemoveOrgMemberRequestObject) (api.RemoveOrgMemberResponseObject, error) {
	c := access.Caller(ctx)
	if req.UserId != c.UserID && !slices.Contains(access.OrgRoles(ctx), orgs.Owner) && !slices.Contains(c.Roles, "admin") {
		return nil, problem.InsufficientScope("Only an owner of the organization removes another member; a member may leave.", []string{"org:owner", "admin"})
	}
	store := o.Store // a member leaving needs no role
	if req.UserId != c.UserID {
		store = o.asOwner(ctx)
	}
	if err := store.RemoveMember(ctx, req.OrgId, req.UserId); err != nil {
		return nil, orgError(err)
	}
	o.Audit.Record(ctx, audit.Event{Type: audit.MemberRemoved, SubjectUserID: req.UserId, Subject: orgSubject(req.OrgId)})
	return api.RemoveOrgMember204Response{}, nil
}

// ListOrgRoles lists an organization's roles.
func (o Orgs) ListOrgRoles(ctx context.Context, req api.ListOrgRolesRequestObject) (api.ListOrgRolesResponseObject, error) {
	roles, err := o.Store.Roles(ctx, req.OrgId)
	if err != nil {
		return nil, orgError(err)
	}
	return api.ListOrgRoles200JSONResponse{Roles: nonNil(roles)}, nil
}

// CreateOrgRole creates a role in an organization.
func (o Orgs) CreateOrgRole(ctx context.Context, req api.CreateOrgRoleRequestObject) (api.CreateOrgRoleResponseObject, error) {
	if err := o.asOwner(ctx).CreateRole(ctx, req.OrgId, req.Body.Name); err != nil {
		if errors.Is(err, orgs.ErrInvalidRole) {
			return nil, &problem.Error{Kind: problem.Invalid, Detail: "Not a role name, or a built-in one.", Fields: []api.FieldError{{Field: "body.name", Message: "is not a role name"}}}
		}
		return nil, orgError(err)
	}
	roles, err := o.Store.Roles(ctx, req.OrgId)
	if err != nil {
		return nil, orgError(err)
	}
	return api.CreateOrgRole201JSONResponse{Roles: nonNil(roles)}, nil
}

// orgNoteBody is the API's Note of an organization's note; its owner is
// its author.
func orgNoteBody(r db.OrgNote) api.Note {
	return api.Note{Id: r.ID, OwnerId: r.AuthorID, DocumentSrc: r.DocumentSrc, Title: r.Title, Body: r.Body,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
}

// changesAnyNote reports whether the caller may change any note of the
// operation's organization (an editor or owner), not only their own.
func changesAnyNote(ctx context.Context) bool {
	roles := access.OrgRoles(ctx)
	return slices.Contains(roles, orgs.Editor) || slices.Contains(roles, orgs.Owner)
}

const orgNoteNotFound = "The organization has no such note."

// ListOrgNotes lists an organization's notes, newest first.
func (o Orgs) ListOrgNotes(ctx context.Context, req api.ListOrgNotesRequestObject) (api.ListOrgNotesResponseObject, error) {
	cur, after, err := page.Parse(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	at, id := before(cur, after)
	rows, err := o.Queries.ListOrgNotes(ctx, db.ListOrgNotesParams{OrgID: req.OrgId, BeforeCreatedAt: at, BeforeID: id, MaxRows: limit + 1})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, limit, func(r db.OrgNote) page.Cursor { return page.Cursor{At: r.CreatedAt.Time, ID: r.ID} }, orgNoteBody)
	return api.ListOrgNotes200JSONResponse{Items: items, NextCursor: next}, nil
}

// CreateOrgNote creates a note of the organization, by the caller.
func (o Orgs) CreateOrgNote(ctx context.Context, req api.CreateOrgNoteRequestObject) (api.CreateOrgNoteResponseObject, error) {
	row, err := o.Queries.CreateOrgNote(ctx, db.CreateOrgNoteParams{OrgID: req.OrgId, AuthorID: access.Caller(ctx).UserID,
		DocumentSrc: req.Body.DocumentSrc, Title: req.Body.Title, Body: req.Body.Body})
	if err != nil {
		// The organization went meanwhile: as if it never was.
		return nil, dberr.Translate(err, orgNoteNotFound)
	}
	return api.CreateOrgNote201JSONResponse(orgNoteBody(row)), nil
}

// GetOrgNote returns a note of the organization.
func (o Orgs) GetOrgNote(ctx context.Context, req api.GetOrgNoteRequestObject) (api.GetOrgNoteResponseObject, error) {
	row, err := o.Queries.GetOrgNote(ctx, db.GetOrgNoteParams{ID: req.Id, OrgID: req.OrgId})
	if err != nil {
		return nil, dberr.Translate(err, orgNoteNotFound)
	}
	return api.GetOrgNote200JSONResponse(orgNoteBody(row)), nil
}

// errNotAuthor refuses a member who is neither the note's author nor an
// editor or owner.
var errNotAuthor = problem.InsufficientScope("Only the note's author, or an editor or owner of the organization, changes it.", []string{"org:editor", "org:owner"})

// UpdateOrgNote changes a note of the organization.
func (o Orgs) UpdateOrgNote(ctx context.Context, req api.UpdateOrgNoteRequestObject) (api.UpdateOrgNoteResponseObject, error) {
	row, err := o.Queries.UpdateOrgNote(ctx, db.UpdateOrgNoteParams{ID: req.Id, OrgID: req.OrgId, CallerID: access.Caller(ctx).UserID,
		AnyNote: changesAnyNote(ctx), DocumentSrc: req.Body.DocumentSrc, Title: req.Body.Title, Body: req.Body.Body})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, o.noteRefusal(ctx, req.OrgId, req.Id)
	}
	if err != nil {
		return nil, dberr.Translate(err, orgNoteNotFound)
	}
	return api.UpdateOrgNote200JSONResponse(orgNoteBody(row)), nil
}

// DeleteOrgNote deletes a note of the organization.
func (o Orgs) DeleteOrgNote(ctx context.Context, req api.DeleteOrgNoteRequestObject) (api.DeleteOrgNoteResponseObject, error) {
	n, err := o.Queries.DeleteOrgNote(ctx, db.DeleteOrgNoteParams{ID: req.Id, OrgID: req.OrgId, CallerID: access.Caller(ctx).UserID, AnyNote: changesAnyNote(ctx)})
	if err != nil {
		return nil, dberr.Translate(err, orgNoteNotFound)
	}
	if n == 0 {
		return nil, o.noteRefusal(ctx, req.OrgId, req.Id)
	}
	return api.DeleteOrgNote204Response{}, nil
}

// noteRefusal tells a member why a change of note id changed nothing:
// there is no such note (404), or it is someone else's (403): members see
// every note of their organization, so this tells them nothing new.
func (o Orgs) noteRefusal(ctx context.Context, org, id int64) error {
	if _, err := o.Queries.GetOrgNote(ctx, db.GetOrgNoteParams{ID: id, OrgID: org}); err == nil {
		return errNotAuthor
	}
	return problem.New(problem.NotFound, orgNoteNotFound)
}
