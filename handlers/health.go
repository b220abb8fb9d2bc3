package handlers

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/problem"
)

// Pinger is what readiness needs of the database.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Feed is what readiness needs of the revocation feed.
type Feed interface {
	// Err says why the replica does not follow the revocation log, or is
	// nil while it does.
	Err() error
}

// Health answers the liveness and readiness probes.
type Health struct {
	DB   Pinger
	Feed Feed
	// Memberships is the organizations' feed, which the gate's org roles
	// follow; nil means none is followed.
	Memberships Feed
	// Draining, once true, makes readiness fail: the replica is shutting
	// down. Nil means never.
	Draining *atomic.Bool
}

// readyTimeout bounds the database check, so that a hung database makes
// /readyz answer 503 rather than hang the probe.
const readyTimeout = 2 * time.Second

// GetHealthz answers 200 while the process runs.
func (Health) GetHealthz(context.Context, api.GetHealthzRequestObject) (api.GetHealthzResponseObject, error) {
	return api.GetHealthz200JSONResponse{Status: api.Ok}, nil
}

// GetReadyz answers 200 when the database answers and the replica follows
// the revocation log and the organizations' log, 503 saying which does
// not otherwise, or that the replica is shutting down.
func (h Health) GetReadyz(ctx context.Context, _ api.GetReadyzRequestObject) (api.GetReadyzResponseObject, error) {
	if h.Draining != nil && h.Draining.Load() {
		return nil, &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "This replica is shutting down.",
			Header: http.Header{"Retry-After": {"5"}},
		}
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := h.DB.Ping(ctx); err != nil {
		httplog.Logger(ctx).Warn("readiness: database does not answer", "err", err)
		return nil, &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "The database does not answer.",
			Header: http.Header{"Retry-After": {"5"}},
		}
	}
	if err := h.Feed.Err(); err != nil {
		// Logged by the feed itself when it goes down.
		return nil, &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "This replica's revocation feed is down: it would not see sessions ended elsewhere (the log says why).",
			Header: http.Header{"Retry-After": {"5"}},
			Err:    err,
		}
	}
	if h.Memberships != nil {
		if err := h.Memberships.Err(); err != nil {
			return nil, &problem.Error{
				Kind:   problem.Unavailable,
				Detail: "This replica's organizations feed is down: it would not see membership changes made elsewhere (the log says why).",
				Header: http.Header{"Retry-After": {"5"}},
				Err:    err,
			}
		}
	}
	return api.GetReadyz200JSONResponse{Status: api.Ok}, nil
}
