package orgs

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/fanout"
	"github.com/rolegate/rolegate/internal/pgfeed"
)

// Channel is the NOTIFY channel of the change log.
const Channel = "rolegate_orgs"

// shardCount is how many maps hold the memberships. A change copies the
// map of its shard rather than locking it (readers take no lock), so a
// shard is kept small: about a thousand memberships at 1M.
const shardCount = 1024

// loadPage is how many memberships a full load reads per query.
const loadPage = 10000

// appliedKeep is how long a seq applied is remembered, so that the log's
// re-reads (the rows of its last 30 seconds come again on every catch-up)
// do not re-read their memberships again: longer than that overlap.
const appliedKeep = 2 * time.Minute

type memberKey struct{ user, org int64 }

// roleSet is a set of role names shared by every membership that holds it.
type roleSet struct{ names []string }

// shard is one immutable part of the memberships; a change replaces it
// whole.
type shard struct{ m map[memberKey]*roleSet }

// Memberships is a replica's copy of every membership, which RolesIn
// reads without a lock or the database. Its zero value is not usable: make
// one with NewMemberships.
type Memberships struct {
	shards [shardCount]atomic.Pointer[shard]
	count  atomic.Int64
	sets   interner
	now    func() time.Time

	mu            sync.Mutex // serialises CatchUp: re-reads must be applied in the order they were made
	loaded        bool
	last          int64               // the highest seq applied
	applied       map[int64]time.Time // seqs applied lately, so that re-reads are not done again
	appliedPruned time.Time

	feedErr atomic.Pointer[error] // nil while the feed is up
	upOnce  sync.Once
	upCh    chan struct{} // closed when the feed first comes up

	created  time.Time
	caughtUp atomic.Int64 // UnixNano of the last successful CatchUp; 0 before

	subs fanout.Hub[Batch] // the streams passing the changes on (Subscribe)
}

// Membership is a person's roles in an organization; nil Roles (or none)
// say that the person is not a member of it (any more).
type Membership struct {
	User, Org int64
	Roles     []string
}

// Batch is what one catch-up changed: each membership's roles as the copy
// now holds them (none for a membership removed), and the log's position
// the copy is current to (the highest seq applied).
type Batch struct {
	Seq     int64
	Members []Membership
}

// Why a Subscription ends, besides fanout's ErrSlow and ErrClosed.
var (
	// ErrFeedDown: the copy stopped following the log.
	ErrFeedDown = errors.New("orgs: the organizations feed is down")
	// ErrReloaded: the copy loaded every membership again (after an outage
	// longer than the log can cover), which publishes no batch.
	ErrReloaded = errors.New("orgs: every membership was loaded again")
)

// Subscription receives a Batch per catch-up that changed memberships,
// from the moment of Subscribe on, in the order they are applied.
type Subscription = fanout.Subscription[Batch]

// View is the copy as it was at a moment: every membership, and the log's
// position it was current to. It does not change.
type View struct {
	shards [shardCount]*shard
	seq    int64
}

// Seq returns the log's position the view is current to.
func (v *View) Seq() int64 { return v.seq }

// RolesIn is Memberships.RolesIn, as of the view.
func (v *View) RolesIn(user, org int64) (roles []string, member bool) {
	s := v.shards[shardOf(user, org)]
	if s == nil {
		return nil, false
	}
	if rs := s.m[memberKey{user, org}]; rs != nil {
		return rs.names, true
	}
	return nil, false
}

// All yields every membership of the view, in no particular order.
func (v *View) All() iter.Seq[Membership] {
	return func(yield func(Membership) bool) {
		for _, s := range v.shards {
			if s == nil {
				continue
			}
			for k, rs := range s.m {
				if !yield(Membership{User: k.user, Org: k.org, Roles: rs.names}) {
					return
				}
			}
		}
	}
}

// Subscribe returns the copy as it is and a Subscription to every batch
// applied after it, none missed and none twice: what a stream of the
// memberships sends. The subscription's buffer holds up to buffer batches
// (one that falls further behind is cut off with fanout.ErrSlow); it is
// cut off with ErrFeedDown at once while the feed is down, and when it
// goes down. The caller must Close it.
func (m *Memberships) Subscribe(buffer int) (*View, *Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := &View{seq: m.last}
	for i := range m.shards {
		v.shards[i] = m.shards[i].Load()
	}
	var refusal error
	if m.Err() != nil {
		refusal = ErrFeedDown
	}
	return v, m.subs.Subscribe(buffer, refusal)
}

// EndSubscriptions ends every subscription with fanout.ErrClosed, and
// those made later at once: the replica is shutting down.
func (m *Memberships) EndSubscriptions() { m.subs.End() }

// Apply sets memberships in the copy (nil Roles remove one) and makes last
// the log's position it is current to: for a copy kept current otherwise
// than by CatchUp, as another service's is from a stream of rolegate's.
func (m *Memberships) Apply(last int64, ms ...Membership) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apply(m.setOf(ms))
	m.last = max(m.last, last)
}

// Replace makes ms every membership of the copy, current to the log's
// position last.
func (m *Memberships) Replace(last int64, ms []Membership) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var fresh [shardCount]map[memberKey]*roleSet
	n := 0
	for k, rs := range m.setOf(ms) {
		if rs == nil {
			continue
		}
		i := shardOf(k.user, k.org)
		if fresh[i] == nil {
			fresh[i] = map[memberKey]*roleSet{}
		}
		if _, dup := fresh[i][k]; !dup {
			n++
		}
		fresh[i][k] = rs
	}
	m.store(fresh, n)
	m.last, m.loaded = last, true
}

// setOf returns ms as a change set, with their roles sorted and shared.
func (m *Memberships) setOf(ms []Membership) map[memberKey]*roleSet {
	set := make(map[memberKey]*roleSet, len(ms))
	for _, x := range ms {
		var rs *roleSet
		if len(x.Roles) > 0 {
			rs = m.sets.get(normalize(x.Roles))
		}
		set[memberKey{x.User, x.Org}] = rs
	}
	return set
}

// NewMemberships returns an empty copy on the clock now (nil means
// time.Now), whose feed counts as down until Follow has caught up once.
// Its first CatchUp loads every membership.
func NewMemberships(now func() time.Time) *Memberships {
	if now == nil {
		now = time.Now
	}
	m := &Memberships{now: now, created: now(), applied: map[int64]time.Time{}, upCh: make(chan struct{})}
	m.sets.sets = map[string]weak.Pointer[roleSet]{}
	m.setDown(errors.New("the organizations feed has not started"))
	return m
}

// RolesIn returns user's roles in org (sorted; the caller must not change
// them) and whether user is a member. It reads memory only, takes no lock
// and does not allocate.
func (m *Memberships) RolesIn(user, org int64) (roles []string, member bool) {
	s := m.shards[shardOf(user, org)].Load()
	if s == nil {
		return nil, false
	}
	rs := s.m[memberKey{user, org}]
	if rs == nil {
		return nil, false
	}
	return rs.names, true
}

// Len returns how many memberships the copy holds.
func (m *Memberships) Len() int { return int(m.count.Load()) }

// shardOf spreads keys over the shards: a multiplicative hash, so that one
// large organization's members fall in every shard.
func shardOf(user, org int64) int {
	h := uint64(user)*0x9e3779b97f4a7c15 ^ uint64(org)*0xc2b2ae3d27d4eb4f
	return int((h ^ h>>32) % shardCount)
}

// CatchUp reads the log from where the copy is, re-reads the memberships
// it names and applies them, and returns any error of the database. The
// first CatchUp, and one after none succeeded for half of Retention (the
// log may have lost what the copy missed), loads every membership instead.
func (m *Memberships) CatchUp(ctx context.Context, q *db.Queries) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	started := m.now()
	var err error
	if caught := m.CaughtUp(); !m.loaded || started.Sub(caught) > Retention/2 {
		err = m.load(ctx, q)
	} else {
		err = m.follow(ctx, q, started)
	}
	if err != nil {
		return err
	}
	// CatchUp calls are serialised: the latest start is this one.
	m.caughtUp.Store(started.UnixNano())
	return nil
}

// load replaces the copy with every membership of the database; the caller
// holds m.mu. The log's position is read first: changes made during the
// load come again from there.
func (m *Memberships) load(ctx context.Context, q *db.Queries) error {
	last, err := q.LastOrgChange(ctx)
	if err != nil {
		return err
	}
	var fresh [shardCount]map[memberKey]*roleSet
	n := 0
	after := db.ListAllOrgMembershipsParams{MaxRows: loadPage}
	for {
		rows, err := q.ListAllOrgMemberships(ctx, after)
		if err != nil {
			return err
		}
		for _, r := range rows {
			k := memberKey{r.UserID, r.OrgID}
			i := shardOf(k.user, k.org)
			if fresh[i] == nil {
				fresh[i] = map[memberKey]*roleSet{}
			}
			fresh[i][k] = m.sets.get(r.Roles)
			n++
		}
		if len(rows) < loadPage {
			break
		}
		after.AfterOrg, after.AfterUser = rows[len(rows)-1].OrgID, rows[len(rows)-1].UserID
	}
	if m.loaded {
		// A stream passing the changes on would miss those that the load
		// brings in without a batch: it starts again from a view.
		m.subs.CutAll(ErrReloaded)
	}
	m.store(fresh, n)
	m.last, m.loaded = last, true
	clear(m.applied)
	return nil
}

// store replaces every shard with fresh, which holds n memberships; the
// caller holds m.mu.
func (m *Memberships) store(fresh [shardCount]map[memberKey]*roleSet, n int) {
	for i := range fresh {
		if fresh[i] == nil {
			m.shards[i].Store(nil)
		} else {
			m.shards[i].Store(&shard{m: fresh[i]})
		}
	}
	m.count.Store(int64(n))
}

// follow applies the log after m.last; the caller holds m.mu.
func (m *Memberships) follow(ctx context.Context, q *db.Queries, now time.Time) error {
	rows, err := q.ListOrgChanges(ctx, m.last)
	if err != nil {
		return err
	}
	var keys []memberKey
	seen := map[memberKey]bool{}
	last := m.last
	for _, r := range rows {
		last = max(last, r.Seq)
		if _, ok := m.applied[r.Seq]; ok {
			continue
		}
		// A change to a whole organization changes no membership by itself:
		// the memberships deleted with an organization have their own rows.
		if r.UserID == nil {
			continue
		}
		k := memberKey{*r.UserID, r.OrgID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		params := db.GetOrgMembershipsParams{OrgIds: make([]int64, len(keys)), UserIds: make([]int64, len(keys))}
		for i, k := range keys {
			params.OrgIds[i], params.UserIds[i] = k.org, k.user
		}
		found, err := q.GetOrgMemberships(ctx, params)
		if err != nil {
			return err
		}
		set := make(map[memberKey]*roleSet, len(keys))
		for _, k := range keys {
			set[k] = nil // gone, unless found
		}
		for _, r := range found {
			set[memberKey{r.UserID, r.OrgID}] = m.sets.get(r.Roles)
		}
		m.apply(set)
		b := Batch{Seq: last, Members: make([]Membership, 0, len(set))}
		for k, rs := range set {
			x := Membership{User: k.user, Org: k.org}
			if rs != nil {
				x.Roles = rs.names
			}
			b.Members = append(b.Members, x)
		}
		m.subs.Publish(b)
	}
	for _, r := range rows {
		if _, ok := m.applied[r.Seq]; !ok {
			m.applied[r.Seq] = now
		}
	}
	if now.Sub(m.appliedPruned) > appliedKeep/4 {
		maps.DeleteFunc(m.applied, func(_ int64, at time.Time) bool { return now.Sub(at) > appliedKeep })
		m.appliedPruned = now
	}
	m.last = last
	return nil
}

// apply sets each membership of set (nil: removes it), copying each shard
// it changes; the caller holds m.mu.
func (m *Memberships) apply(set map[memberKey]*roleSet) {
	byShard := map[int][]memberKey{}
	for k := range set {
		i := shardOf(k.user, k.org)
		byShard[i] = append(byShard[i], k)
	}
	for i, keys := range byShard {
		var next map[memberKey]*roleSet
		if old := m.shards[i].Load(); old != nil {
			next = maps.Clone(old.m)
		} else {
			next = make(map[memberKey]*roleSet, len(keys))
		}
		for _, k := range keys {
			_, had := next[k]
			switch rs := set[k]; {
			case rs != nil:
				next[k] = rs
				if !had {
					m.count.Add(1)
				}
			case had:
				delete(next, k)
				m.count.Add(-1)
			}
		}
		if len(next) == 0 {
			m.shards[i].Store(nil)
		} else {
			m.shards[i].Store(&shard{m: next})
		}
	}
}

// CaughtUp returns when the last successful CatchUp started reading (the
// copy holds every change committed before then), or the zero Time if
// none has succeeded.
func (m *Memberships) CaughtUp() time.Time {
	if ns := m.caughtUp.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Lag returns how far behind the log the copy may be: the time since the
// last successful CatchUp started, or since NewMemberships if none has.
// While the feed is up it stays within about its poll interval (1s by
// default).
func (m *Memberships) Lag() time.Duration {
	since := m.created
	if t := m.CaughtUp(); !t.IsZero() {
		since = t
	}
	return max(0, m.now().Sub(since))
}

// Err returns why the feed is down, or nil while it is up: readiness
// reports it, since a replica that misses membership changes must leave
// the load balancer's rotation while it keeps serving with what it knows.
func (m *Memberships) Err() error {
	if p := m.feedErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *Memberships) setDown(err error) { m.feedErr.Store(&err) }
func (m *Memberships) setUp() {
	m.feedErr.Store(nil)
	m.upOnce.Do(func() { close(m.upCh) })
}

// Up is closed once the feed has first come up.
func (m *Memberships) Up() <-chan struct{} { return m.upCh }

// Feed is how Memberships follow the log.
type Feed struct {
	// Pool reads the log.
	Pool *pgxpool.Pool
	// Poll is how often the log is read without a notification (default
	// 1s; 250ms when the engine has no LISTEN).
	Poll time.Duration
	// Logger reports the feed going down and coming back.
	Logger *slog.Logger
}

// Follow keeps m current until ctx ends: it catches up, LISTENs on Channel
// through a connection of its own and catches up on every notification and
// every Poll, and reconnects when the connection fails (package pgfeed).
// While it cannot read the log, Err says why.
func (m *Memberships) Follow(ctx context.Context, f Feed) {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pgfeed.Follow(ctx, f.Pool, f.Poll, log, pgfeed.Log{Name: "organizations feed", Channel: Channel, CatchUp: m.CatchUp,
		Up: func() { m.up(log) }, Down: func(err error) { m.down(log, err) }})
}

func (m *Memberships) down(log *slog.Logger, err error) {
	if m.Err() == nil {
		log.Error("organizations feed is down: membership changes made elsewhere are not seen", "err", err)
	}
	m.setDown(err)
	// Under m.mu, as Subscribe checks the feed: none slips between.
	m.mu.Lock()
	m.subs.CutAll(ErrFeedDown)
	m.mu.Unlock()
}

func (m *Memberships) up(log *slog.Logger) {
	if err := m.Err(); err != nil {
		log.Info("organizations feed is up", "was", err.Error())
		m.setUp()
	}
}

// interner shares one roleSet among the memberships with the same roles,
// holding it weakly: a set no membership holds any more is freed, and its
// entry goes with it.
type interner struct {
	mu   sync.Mutex
	sets map[string]weak.Pointer[roleSet]
}

// get returns the set of roles, which are sorted and without duplicates
// (as the database holds them).
func (in *interner) get(roles []string) *roleSet {
	key := strings.Join(roles, ",") // a role name has no comma
	in.mu.Lock()
	defer in.mu.Unlock()
	if rs := in.sets[key].Value(); rs != nil {
		return rs
	}
	rs := &roleSet{names: strings.Split(key, ",")}
	wp := weak.Make(rs)
	in.sets[key] = wp
	runtime.AddCleanup(rs, in.forget, cleanupArg{key, wp})
	return rs
}

type cleanupArg struct {
	key string
	wp  weak.Pointer[roleSet]
}

// forget drops the entry of a set that was freed, unless a new set took
// its key since.
func (in *interner) forget(a cleanupArg) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sets[a.key] == a.wp {
		delete(in.sets, a.key)
	}
}

// len returns how many distinct sets of roles are held.
func (in *interner) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.sets)
}
