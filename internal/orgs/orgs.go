// Package orgs provides organizations, the roles their members hold within
// them, and each replica's in-memory copy of those memberships, which the
// gate reads on every request that declares x-org.
//
// # Storage
//
// Store changes organizations, roles and members, each change one
// transaction. Every organization has the built-in roles owner, editor and
// viewer without a row; roles created for one (CreateRole) are stored.
// Every change appends to the change log (table org_changes) in its own
// transaction and notifies the channel rolegate_orgs: triggers of the
// schema do it, so that memberships deleted with an account are logged
// too. No change a Store makes leaves an organization without an owner
// (ErrLastOwner): it locks the organization's row before changing its
// members, and checks after the change, so that concurrent demotions take
// turns. Deleting an account is not such a change: the account's
// memberships go with it, even where it was the last owner.
//
// # Memberships in memory
//
// Memberships holds every membership of the database, in full, rather than
// a bounded cache loaded on demand: RolesIn is then a map lookup that
// never waits for the database, and a miss is an answer (not a member),
// not a query. Each membership is a 16-byte key (account and organization
// ids) and a pointer to its set of role names, shared by every membership
// with the same set (interned, and freed with the last membership that
// holds it), in 1024 maps that a change copies rather than locks.
// Measured on a load from PostgreSQL, at the scale target of 1M
// memberships in 100k organizations (BenchmarkLoad1M: 100k accounts in 10
// each): 56 bytes of heap per membership, 56 MB in all, loaded in 1.3 s on
// two cores; twice that while a reload builds the new copy beside the old
// one. `make test` measures 50k memberships (TestMemoryPerMembership,
// about 45 bytes each: the maps' growth steps fall differently). RolesIn
// takes about 60 ns in that copy, and allocates nothing (BenchmarkRolesIn).
//
// The copy follows the change log as the revocation list does (package
// revocation): CatchUp reads the log from where the copy is and re-reads
// the memberships it names; Follow LISTENs on rolegate_orgs, catches up on
// every notification and every second besides, and reconnects when its
// connection fails; Lag says how far behind it may be. A copy that has
// not caught up for longer than half of Retention, after which the log is
// pruned, loads every membership again.
package orgs

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
)

// The built-in roles, which every organization has.
const (
	// Owner administers the organization: its members, its roles and its
	// deletion. Every organization keeps at least one.
	Owner = "owner"
	// Editor changes the organization's resources.
	Editor = "editor"
	// Viewer reads them.
	Viewer = "viewer"
)

// BuiltInRoles are the roles every organization has, in the order Roles
// lists them.
var BuiltInRoles = []string{Owner, Editor, Viewer}

// MaxCustomRoles is how many roles CreateRole may create for one
// organization.
const MaxCustomRoles = 100

// Errors of the Store, each a refusal that the API answers with a 4xx
// status; any other error is internal.
var (
	// ErrNotFound (404): no such organization, account, or membership.
	ErrNotFound = errors.New("orgs: no such organization or member")
	// ErrSlugTaken (409): another organization has the slug.
	ErrSlugTaken = errors.New("orgs: the slug is taken")
	// ErrInvalidSlug (400): a slug is 2 to 64 of a-z, 0-9 and -.
	ErrInvalidSlug = errors.New("orgs: a slug is 2 to 64 of a-z, 0-9 and -")
	// ErrInvalidName (400): a name is 1 to 200 characters of UTF-8.
	ErrInvalidName = errors.New("orgs: a name is 1 to 200 characters")
	// ErrNoRoles (400): a member holds at least one role.
	ErrNoRoles = errors.New("orgs: a member needs at least one role")
	// ErrUnknownRole (400 or 422): a role is neither built in nor created
	// for the organization.
	ErrUnknownRole = errors.New("orgs: the organization has no such role")
	// ErrInvalidRole (400): a role's name is of the form of a global role's
	// (^[a-z][a-z0-9_.-]{0,63}$).
	ErrInvalidRole = errors.New("orgs: not a role name")
	// ErrRoleExists (409): the organization has the role already (every
	// organization has the built-in ones).
	ErrRoleExists = errors.New("orgs: the organization has the role already")
	// ErrTooManyRoles (409): the organization has MaxCustomRoles roles of
	// its own.
	ErrTooManyRoles = errors.New("orgs: the organization has as many roles as it may")
	// ErrLastOwner (409): the change would leave the organization without
	// an owner.
	ErrLastOwner = errors.New("orgs: an organization keeps at least one owner")
	// ErrNotOwner (403): AsOwner's account is no longer an owner of the
	// organization.
	ErrNotOwner = errors.New("orgs: the account is not an owner of the organization")
)

// Org is an organization.
type Org struct {
	ID   int64
	Slug string
	Name string
	// CreatedBy is the account that created the organization, or 0 once
	// that account is deleted.
	CreatedBy int64
	CreatedAt time.Time
}

// Member is an account's membership of an organization.
type Member struct {
	UserID int64
	Email  string
	// Roles are sorted, without duplicates, never empty.
	Roles     []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store reads and changes organizations in PostgreSQL. Make one with
// NewStore.
type Store struct {
	pool   *pgxpool.Pool
	local  *Memberships
	logger *slog.Logger
	owner  int64 // AsOwner's account; 0: changes are not checked
}

// AsOwner returns the store acting for the account owner as an owner of
// the organizations it changes: each change (members, roles, deletion)
// checks in its transaction, once the organization's row is locked, that
// the account is still an owner, and returns ErrNotOwner otherwise. The
// gate admitted the request from this replica's copy of the memberships,
// which may be up to a second behind a demotion made on another replica:
// in that second, an owner just demoted would otherwise still manage the
// members (and make themselves owner again).
func (s *Store) AsOwner(owner int64) *Store {
	c := *s
	c.owner = owner
	return &c
}

// lock locks org's row in q's transaction (ErrNotFound, through
// translate, when there is none) and checks AsOwner's account.
func (s *Store) lock(ctx context.Context, q *db.Queries, org int64) error {
	if _, err := q.LockOrg(ctx, org); err != nil {
		return err
	}
	if s.owner == 0 {
		return nil
	}
	roles, err := q.GetOrgMemberRoles(ctx, db.GetOrgMemberRolesParams{OrgID: org, UserID: s.owner})
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && !slices.Contains(roles, Owner):
		return ErrNotOwner
	default:
		return err
	}
}

// NewStore returns a Store on pool. After every change it commits, it
// catches local up (when not nil: this replica's Memberships), so that
// the next request on this replica sees the change; a failure to is
// logged to logger, and the feed catches up anyway.
func NewStore(pool *pgxpool.Pool, local *Memberships, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, local: local, logger: logger}
}

var (
	slugPattern = regexp.MustCompile(`^[a-z0-9-]{2,64}$`)
	rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)
)

// Create creates an organization whose first member, with the role owner,
// is creator. It returns ErrInvalidSlug, ErrInvalidName, ErrSlugTaken, or
// ErrNotFound when creator is no account.
func (s *Store) Create(ctx context.Context, creator int64, slug, name string) (Org, error) {
	if !slugPattern.MatchString(slug) {
		return Org{}, ErrInvalidSlug
	}
	if n := utf8.RuneCountInString(name); n < 1 || n > 200 || !utf8.ValidString(name) {
		return Org{}, ErrInvalidName
	}
	var org Org
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		row, err := q.CreateOrg(ctx, db.CreateOrgParams{Slug: slug, Name: name, CreatedBy: &creator})
		if err != nil {
			return err
		}
		org = orgOf(row)
		return q.UpsertOrgMember(ctx, db.UpsertOrgMemberParams{OrgID: row.ID, UserID: creator, Roles: []string{Owner}})
	})
	if err != nil {
		return Org{}, translate(err)
	}
	s.sync(ctx)
	return org, nil
}

// Get returns the organization id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Org, error) {
	row, err := db.New(s.pool).GetOrg(ctx, id)
	if err != nil {
		return Org{}, translate(err)
	}
	return orgOf(row), nil
}

// ListFor returns up to limit of the organizations user is a member of, in
// id order, after the id afterID (0 for the first page).
func (s *Store) ListFor(ctx context.Context, user, afterID int64, limit int32) ([]Org, error) {
	rows, err := db.New(s.pool).ListOrgsOfUser(ctx, db.ListOrgsOfUserParams{UserID: user, AfterID: afterID, MaxRows: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Org, len(rows))
	for i, r := range rows {
		out[i] = orgOf(r)
	}
	return out, nil
}

// Delete deletes the organization id with its roles and members, or
// returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := s.lock(ctx, q, id); err != nil {
			return err
		}
		_, err := q.DeleteOrg(ctx, id)
		return err
	})
	if err != nil {
		return translate(err)
	}
	s.sync(ctx)
	return nil
}

// Members returns up to limit of the members of org, in user id order,
// after the id afterUserID (0 for the first page); ErrNotFound when there
// is no such organization.
func (s *Store) Members(ctx context.Context, org, afterUserID int64, limit int32) ([]Member, error) {
	q := db.New(s.pool)
	rows, err := q.ListOrgMembers(ctx, db.ListOrgMembersParams{OrgID: org, AfterUserID: afterUserID, MaxRows: limit})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		// Only an empty page needs to tell an organization without members
		// (its last owner's account deleted) from none at all.
		if ok, err := q.OrgExists(ctx, org); err != nil || !ok {
			return nil, cmpErr(err, ErrNotFound)
		}
	}
	out := make([]Member, len(rows))
	for i, r := range rows {
		out[i] = Member{UserID: r.UserID, Email: r.Email, Roles: r.Roles, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
	}
	return out, nil
}

// SetMember makes user a member of org with roles, or replaces the roles
// of a member, and returns the roles the member held before (nil when
// user was not a member: the audit trail tells member.added from
// member.roles_changed by it). Roles are sorted and their duplicates
// dropped. It returns ErrNoRoles; ErrUnknownRole for a role neither built
// in nor created for org; ErrNotFound when org or user does not exist;
// ErrLastOwner when the change takes the last owner's role away.
func (s *Store) SetMember(ctx context.Context, org, user int64, roles []string) (previous []string, err error) {
	roles = normalize(roles)
	if len(roles) == 0 {
		return nil, ErrNoRoles
	}
	var custom []string
	for _, r := range roles {
		if !rolePattern.MatchString(r) {
			return nil, ErrUnknownRole
		}
		if !slices.Contains(BuiltInRoles, r) {
			custom = append(custom, r)
		}
	}
	err = s.changeMembers(ctx, org, func(q *db.Queries) error {
		if len(custom) > 0 {
			found, err := q.FindOrgRoles(ctx, db.FindOrgRolesParams{OrgID: org, Names: custom})
			if err != nil {
				return err
			}
			if len(found) != len(custom) {
				return ErrUnknownRole
			}
		}
		old, err := q.GetOrgMemberRoles(ctx, db.GetOrgMemberRolesParams{OrgID: org, UserID: user})
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			old = nil
		case err != nil:
			return err
		}
		previous = old
		return q.UpsertOrgMember(ctx, db.UpsertOrgMemberParams{OrgID: org, UserID: user, Roles: roles})
	})
	if err != nil {
		return nil, err
	}
	return previous, nil
}

// RemoveMember ends user's membership of org. It returns ErrNotFound when
// user is not a member of org, and ErrLastOwner when user is its last
// owner.
func (s *Store) RemoveMember(ctx context.Context, org, user int64) error {
	return s.changeMembers(ctx, org, func(q *db.Queries) error {
		n, err := q.DeleteOrgMember(ctx, db.DeleteOrgMemberParams{OrgID: org, UserID: user})
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
}

// changeMembers runs fn in one transaction, the organization's row locked
// before (ErrNotFound when there is none), so that every change to its
// members takes its turn, and returns ErrLastOwner, undoing fn, when the
// organization has no owner after fn. On success it catches this
// replica's Memberships up.
func (s *Store) changeMembers(ctx context.Context, org int64, fn func(q *db.Queries) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := s.lock(ctx, q, org); err != nil {
			return err
		}
		if err := fn(q); err != nil {
			return err
		}
		ok, err := q.OrgHasOwner(ctx, org)
		if err == nil && !ok {
			return ErrLastOwner
		}
		return err
	})
	if err != nil {
		return translate(err)
	}
	s.sync(ctx)
	return nil
}

// CreateRole creates the role name for org, which its members may then be
// given. It returns ErrInvalidRole, ErrRoleExists (every organization has
// the built-in roles), ErrTooManyRoles past MaxCustomRoles, or ErrNotFound
// when there is no such organization.
func (s *Store) CreateRole(ctx context.Context, org int64, name string) error {
	if !rolePattern.MatchString(name) {
		return ErrInvalidRole
	}
	if slices.Contains(BuiltInRoles, name) {
		return ErrRoleExists
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		// Locked, so that concurrent creations count each other.
		if err := s.lock(ctx, q, org); err != nil {
			return err
		}
		n, err := q.CountOrgRoles(ctx, org)
		if err != nil {
			return err
		}
		if n >= MaxCustomRoles {
			return ErrTooManyRoles
		}
		return q.CreateOrgRole(ctx, db.CreateOrgRoleParams{OrgID: org, Name: name})
	})
	if err != nil {
		return translate(err)
	}
	s.sync(ctx)
	return nil
}

// Roles returns the roles of org: the built-in ones (BuiltInRoles), then
// those created for it in name order; ErrNotFound when there is no such
// organization.
func (s *Store) Roles(ctx context.Context, org int64) ([]string, error) {
	q := db.New(s.pool)
	custom, err := q.ListOrgRoles(ctx, org)
	if err != nil {
		return nil, err
	}
	if len(custom) == 0 {
		if ok, err := q.OrgExists(ctx, org); err != nil || !ok {
			return nil, cmpErr(err, ErrNotFound)
		}
	}
	return append(slices.Clone(BuiltInRoles), custom...), nil
}

// Retention is how long the change log keeps a change: replicas catch up
// within seconds, and one that has not for half of it loads every
// membership again.
const Retention = time.Hour

// Prune deletes the changes logged more than Retention before now. Any
// replica may run it; running it twice does no harm.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	_, err := db.New(s.pool).DeleteOldOrgChanges(ctx, pgtype.Timestamptz{Time: now.Add(-Retention), Valid: true})
	return err
}

// sync catches this replica's Memberships up after a change has committed.
func (s *Store) sync(ctx context.Context) {
	if s.local == nil {
		return
	}
	if err := s.local.CatchUp(ctx, db.New(s.pool)); err != nil {
		s.logger.Warn("orgs: catching up after a change", "err", err)
	}
}

// translate turns the database's refusals into the package's errors, once,
// at the data boundary: no row, the slug's unique constraint, and a
// foreign key to an account or organization that is gone.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "orgs_slug_key":
			return ErrSlugTaken
		case pgErr.Code == "23505" && pgErr.ConstraintName == "org_roles_pkey":
			return ErrRoleExists
		case pgErr.Code == "23503": // foreign_key_violation: the account or organization is gone
			return ErrNotFound
		}
	}
	return err
}

// cmpErr returns err, or else notFound.
func cmpErr(err, notFound error) error {
	if err != nil {
		return err
	}
	return notFound
}

// normalize returns roles sorted, without duplicates.
func normalize(roles []string) []string {
	roles = slices.Clone(roles)
	slices.Sort(roles)
	return slices.Compact(roles)
}

func orgOf(r db.Org) Org {
	o := Org{ID: r.ID, Slug: r.Slug, Name: r.Name, CreatedAt: r.CreatedAt.Time}
	if r.CreatedBy != nil {
		o.CreatedBy = *r.CreatedBy
	}
	return o
}
