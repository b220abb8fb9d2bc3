package rolegate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/migrate"
)

// canonicalEmailStep is the step that keys accounts by their canonical
// email, computed in Go by its hook.
const canonicalEmailStep = 3

// SchemaHooks returns the Go code that belongs to Schema's steps, for
// migrate.Apply: step 3 gives existing accounts their canonical email.
func SchemaHooks() migrate.Hooks {
	return migrate.Hooks{canonicalEmailStep: accounts.AssignCanonicalEmails}
}

// ApplySchema readies the database at pool for rolegate, as every caller
// does it (`rolegate serve`, `migrate` and `user add`, and the tests'
// template database): it applies the steps of Schema not applied yet, each
// with its Go hook, under migrate's lock; gives accounts left without a
// canonical email (created by an older replica during an upgrade, or freed
// from a collision by an operator) theirs; and creates roles and the admin
// role, so that accounts can be given them. It logs what it applied and
// anything that needs an operator's attention.
func ApplySchema(ctx context.Context, pool *pgxpool.Pool, roles []string, logger *slog.Logger) error {
	steps, err := migrate.Parse(Schema)
	if err != nil {
		return err
	}
	res, err := migrate.Apply(ctx, pool, steps, SchemaHooks())
	if err != nil {
		return err
	}
	for _, v := range res.Applied {
		logger.Info("applied schema step", "version", v, "name", steps[v-1].Name)
	}
	if !slices.Contains(res.Applied, canonicalEmailStep) {
		warnings, err := accounts.RepairCanonicalEmails(ctx, pool)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			res.Warnings = append(res.Warnings, migrate.Warning{Version: canonicalEmailStep, Message: w})
		}
	}
	for _, w := range res.Warnings {
		logger.Warn("schema step needs attention", "version", w.Version, "name", steps[w.Version-1].Name, "problem", w.Message)
	}
	logger.Info("database schema is current", "version", res.Current)
	if err := db.New(pool).EnsureRoles(ctx, append(slices.Clone(roles), accounts.AdminRole)); err != nil {
		return fmt.Errorf("creating the roles: %w", err)
	}
	return nil
}
