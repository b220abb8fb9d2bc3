package handlers

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/password"
)

// Users implements the users tag (account and role administration) and the
// caller's own password change.
type Users struct {
	Pool      *pgxpool.Pool
	Queries   *db.Queries
	Hasher    *password.Pool
	SpecRoles []string
}
