// Package dbtimeout bounds how long a request waits on the database, so
// that a database that hangs (stopped with SIGSTOP, behind a partition,
// stalled on its disk) costs a request a 503 within about a second, not
// the client's whole patience.
//
// Configure installs on a pool a tracer that gives each database call made
// for a request (a context its inRequest function recognises, or one marked
// by Bound) a deadline of its own:
// waiting for a connection, and each statement (a query with its rows, a
// batch, a copy, a prepare). Time spent between calls, hashing a password
// or splitting a PDF, is not database time and is not bounded. Calls under
// unmarked contexts (start-up migrations, which may wait on another
// replica's advisory lock; the revocation feed; pruning, which may delete
// much) are left alone.
//
// Past its deadline (or any cancellation of its context) pgx sends
// PostgreSQL a cancel request, so that the statement stops on the server
// too rather than running on for nobody, and returns an error that dberr
// translates to 503 with Retry-After. A database that does not answer the
// cancel within CancelGrace gets its connection closed, which the pool
// then replaces. A write whose statement timed out may still have been
// applied: the client only knows it was not acknowledged.
package dbtimeout

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultBound is ROLEGATE_DB_TIMEOUT's default.
const DefaultBound = time.Second

// CancelGrace is how long a cancelled call waits for the database to
// answer its cancel request before its connection is closed: long enough
// for a live server, short enough that a hung one costs little more than
// the bound.
const CancelGrace = 250 * time.Millisecond

// ConnectTimeout bounds one attempt to connect, when the database URL sets
// no connect_timeout. It is longer than a request's bound on purpose: a
// connection that takes a while to make is still worth having for the
// requests after the one that asked for it, and a request never waits for
// it longer than its bound anyway. It only keeps hung attempts from
// holding the pool's slots for ever.
const ConnectTimeout = 10 * time.Second

type boundKey struct{}
type cancelKey struct{}

// Bound returns ctx marked so that each database call made under it, through
// a pool set up by Configure, takes at most d. A d of 0 or less leaves ctx
// unmarked.
func Bound(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, boundKey{}, d)
}

// Configure installs a Tracer on cfg's connections that bounds by d each
// call under a context for which inRequest (which may be nil) reports
// true, makes a cancelled call cancel its statement on the server, and
// sets ConnectTimeout unless the URL set connect_timeout. It replaces any
// tracer cfg had. Recognising a request's context rather than marking it
// costs the requests that never reach the database nothing.
func Configure(cfg *pgxpool.Config, d time.Duration, inRequest func(context.Context) bool) {
	cfg.ConnConfig.Tracer = Tracer{Bound: d, InRequest: inRequest}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: CancelGrace}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
}

// Tracer gives each database call under a context marked by Bound, or one
// InRequest recognises, its deadline, and releases the deadline's timer
// when the call ends. It is a pgx tracer only in form: it records nothing.
type Tracer struct {
	// Bound is the deadline of a call InRequest recognises; 0 or less
	// means none.
	Bound time.Duration
	// InRequest reports whether ctx is a request's; nil means never.
	InRequest func(ctx context.Context) bool
}

var (
	_ pgx.QueryTracer       = Tracer{}
	_ pgx.BatchTracer       = Tracer{}
	_ pgx.CopyFromTracer    = Tracer{}
	_ pgx.PrepareTracer     = Tracer{}
	_ pgxpool.AcquireTracer = Tracer{}
)

// start returns ctx with the deadline of one call when ctx is marked, and
// ctx itself otherwise. Every marked call gets a cancel of its own, so that
// end never cancels an enclosing call's context (a prepare within a query).
func (t Tracer) start(ctx context.Context) context.Context {
	d, ok := ctx.Value(boundKey{}).(time.Duration)
	if !ok {
		if t.Bound <= 0 || t.InRequest == nil || !t.InRequest(ctx) {
			return ctx
		}
		d = t.Bound
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

// end releases the deadline start gave ctx, if any.
func end(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

// TraceQueryStart bounds a statement: Exec, or Query until its rows close.
func (t Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return t.start(ctx)
}

// TraceQueryEnd releases the statement's deadline.
func (Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) { end(ctx) }

// TraceBatchStart bounds a batch until its results close.
func (t Tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx)
}

// TraceBatchQuery does nothing: the batch as a whole is bounded.
func (Tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd releases the batch's deadline.
func (Tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) { end(ctx) }

// TraceCopyFromStart bounds a COPY FROM.
func (t Tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx)
}

// TraceCopyFromEnd releases the copy's deadline.
func (Tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	end(ctx)
}

// TracePrepareStart bounds a prepare.
func (t Tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return t.start(ctx)
}

// TracePrepareEnd releases the prepare's deadline.
func (Tracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareEndData) { end(ctx) }

// TraceAcquireStart bounds the wait for a connection from the pool, a
// health check of an idle one included. A connection being made for it
// goes on in the background (bounded by its connect timeout) and joins the
// pool.
func (t Tracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return t.start(ctx)
}

// TraceAcquireEnd releases the wait's deadline.
func (Tracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	end(ctx)
}
