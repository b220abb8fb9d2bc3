package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/orgs"
)

const orgUsage = `usage: rolegate org add --slug S --name N --owner EMAIL
       rolegate org member --org SLUG --email E --roles a,b   (add, or set the roles)
       rolegate org member --org SLUG --email E --remove`

// orgCmd creates organizations and sets their members, for operators: the
// same changes as the API's, logged for every replica to follow.
func orgCmd(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "add" && args[0] != "member" {
		return errors.New(orgUsage)
	}
	fs := flag.NewFlagSet("org "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	slug := fs.String("slug", "", "the organization's slug")
	name := fs.String("name", "", "the organization's name")
	owner := fs.String("owner", "", "the email of its first owner")
	org := fs.String("org", "", "the organization's slug")
	addr := fs.String("email", "", "the member's email")
	roles := fs.String("roles", "", "comma-separated org roles")
	remove := fs.Bool("remove", false, "remove the member")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errors.New(orgUsage)
	}
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	return withDB(ctx, cfg, logger, true, spec, func(pool *pgxpool.Pool) error {
		store := orgs.NewStore(pool, nil, logger)
		q := db.New(pool)
		if args[0] == "add" {
			if *slug == "" || *name == "" || *owner == "" {
				return errors.New(orgUsage)
			}
			id, err := accountOf(ctx, q, *owner)
			if err != nil {
				return err
			}
			o, err := store.Create(ctx, id, *slug, *name)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created organization %d (%s), owner %s\n", o.ID, o.Slug, *owner)
			return nil
		}
		if *org == "" || *addr == "" || (*roles == "") == !*remove {
			return errors.New(orgUsage)
		}
		o, err := q.GetOrgBySlug(ctx, *org)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("there is no organization %q", *org)
		}
		if err != nil {
			return err
		}
		id, err := accountOf(ctx, q, *addr)
		if err != nil {
			return err
		}
		if *remove {
			if err := store.RemoveMember(ctx, o.ID, id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed %s from %s\n", *addr, o.Slug)
			return nil
		}
		list := accounts.ParseRoles(*roles)
		if _, err := store.SetMember(ctx, o.ID, id, list); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is %s in %s\n", *addr, strings.Join(list, ","), o.Slug)
		return nil
	})
}

// accountOf is the id of the account of address.
func accountOf(ctx context.Context, q *db.Queries, address string) (int64, error) {
	key, err := email.Canonical(address)
	if err == nil {
		var u db.GetUserWithRolesByCanonicalEmailRow
		if u, err = q.GetUserWithRolesByCanonicalEmail(ctx, key); err == nil {
			return u.ID, nil
		}
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, email.ErrInvalid) {
		return 0, fmt.Errorf("there is no account %s", strconv.Quote(address))
	}
	return 0, err
}
