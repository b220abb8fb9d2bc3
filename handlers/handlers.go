// Package handlers implements the operations of api/openapi.yaml: one type
// per tag of the spec, all embedded in Server. Handlers hold no
// authentication or authorization code: the access middleware has admitted
// every request that reaches them.
package handlers

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/api"
)

// Server implements every operation of the spec.
type Server struct {
	Health
}

var _ api.StrictServerInterface = (*Server)(nil)

// New returns a Server that keeps its data in pool.
func New(pool *pgxpool.Pool) *Server {
	return &Server{
		Health: Health{DB: pool},
	}
}
