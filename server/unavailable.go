package server

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/rolegate/rolegate/problem"
)

// errorResponse is the one place unexpected handler errors pass through on
// their way to the client: a database that cannot be reached is a 503 with
// Retry-After, which clients can retry, rather than a 500.
func errorResponse(w http.ResponseWriter, r *http.Request, err error) {
	if dbUnavailable(err) {
		err = &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "The database is unavailable; retry shortly.",
			Header: http.Header{"Retry-After": {"5"}},
			Err:    err,
		}
	}
	problem.Write(w, r, err)
}

// dbUnavailable reports whether err says the database could not be reached
// or is shutting down, as opposed to a fault in the request or in rolegate.
func dbUnavailable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
		pgErr      *pgconn.PgError
	)
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, puddle.ErrClosedPool), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &pgErr):
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return pgErr.Code == "3D000" // invalid_catalog_name: the database is gone
	}
	return false
}
