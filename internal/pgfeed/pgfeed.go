// Package pgfeed follows a change log in PostgreSQL the way every replica
// of rolegate follows its logs (revocations, organizations): a connection
// of its own LISTENs on the log's channel, and the follower catches up on
// every notification and every poll; a connection that fails is replaced,
// with a backoff from 100 ms doubling to 5 s, and an engine that refuses
// LISTEN is polled four times as often instead.
package pgfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
)

// Log is a change log and what its follower does with it.
type Log struct {
	// Name names the feed in the log lines ("revocation feed").
	Name string
	// Channel is the log's NOTIFY channel.
	Channel string
	// CatchUp applies the log since the follower's last read.
	CatchUp func(ctx context.Context, q *db.Queries) error
	// Up is told of every catch-up that read the log; Down of every
	// failure, why the follower does not follow it now.
	Up   func()
	Down func(err error)
}

// Follow keeps l's follower current until ctx ends, reading through pool,
// polling every poll (default 1s) without a notification; logger (nil
// discards) hears of LISTEN being refused.
func Follow(ctx context.Context, pool *pgxpool.Pool, poll time.Duration, logger *slog.Logger, l Log) {
	if poll <= 0 {
		poll = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	q := db.New(pool)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listen(ctx, pool, q, poll, logger, l)
		if ctx.Err() != nil {
			return
		}
		l.Down(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one LISTEN connection until it fails, and returns why.
func listen(ctx context.Context, pool *pgxpool.Pool, q *db.Queries, poll time.Duration, logger *slog.Logger, l Log) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	// The connection holds a LISTEN: it never goes back to the pool.
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	listening := true
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{l.Channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return err
		}
		logger.Warn(l.Name+": LISTEN refused; polling the log instead", "err", err, "every", poll/4)
		listening, poll = false, poll/4
	}
	for {
		if err := l.CatchUp(ctx, q); err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		l.Up()
		if !listening {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(poll):
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, poll)
		_, err := c.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("listening: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
