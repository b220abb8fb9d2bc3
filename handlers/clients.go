package handlers

import (
	"context"
	"errors"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/page"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/problem"
)

// Clients implements the clients tag: machine clients, which get tokens
// with the client credentials grant. Like account administration, every
// operation checks that the caller still is an enabled admin.
type Clients struct {
	Pool     *pgxpool.Pool
	Queries  *db.Queries
	Sessions *sessions.Service
	Audit    *audit.Log
}

// clientNotFound is the answer for a client id that names no client.
const clientNotFound = "No such client."

// CreateClient creates a client holding the given roles and answers its
// secret, shown only this once. Returns 400 for a role that does not exist.
func (c Clients) CreateClient(ctx context.Context, req api.CreateClientRequestObject) (api.CreateClientResponseObject, error) {
	var row db.GetClientRow
	var secret string
	err := asAdmin(ctx, c.Pool, c.Sessions, func(q *db.Queries) (err error) {
		b := req.Body
		nc := accounts.NewClient{Name: b.Name, Public: b.Public != nil && *b.Public}
		if b.Roles != nil {
			for _, r := range *b.Roles {
				nc.Roles = append(nc.Roles, string(r))
			}
		}
		if b.RedirectUris != nil {
			nc.RedirectURIs = *b.RedirectUris
		}
		if b.PostLogoutRedirectUris != nil {
			nc.PostLogoutRedirectURIs = *b.PostLogoutRedirectUris
		}
		row, secret, err = accounts.CreateClient(ctx, q, nc)
		return err
	})
	if err != nil {
		return nil, err
	}
	detail := "roles: " + strings.Join(row.Roles, ",")
	if row.Public {
		detail += "; public"
	}
	c.Audit.Record(ctx, audit.Event{Type: audit.ClientCreated, Subject: "client:" + row.ClientID, Detail: detail})
	return api.CreateClient201JSONResponse{
		Body:    withSecret(clientOf(row), secret),
		Headers: api.CreateClient201ResponseHeaders{Location: "/clients/" + row.ClientID, CacheControl: "no-store"},
	}, nil
}

// ListClients returns a page of clients, oldest first.
func (c Clients) ListClients(ctx context.Context, req api.ListClientsRequestObject) (api.ListClientsResponseObject, error) {
	var rows []db.ListClientsRow
	cur, _, err := page.Parse(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	if err := readAsAdmin(ctx, c.Queries); err != nil {
		return nil, err
	}
	rows, err = c.Queries.ListClients(ctx, db.ListClientsParams{AfterID: cur.ID, MaxRows: limit + 1})
	if err != nil {
		return nil, dberr.Translate(err, "")
	}
	items, next := page.Of(rows, limit, func(r db.ListClientsRow) page.Cursor { return page.Cursor{ID: r.ID} },
		func(r db.ListClientsRow) api.MachineClient {
			return api.MachineClient{ClientId: r.ClientID, Name: r.Name, Roles: nonNil(r.Roles), Public: r.Public,
				RedirectUris: nonNil(r.RedirectUris), PostLogoutRedirectUris: nonNil(r.PostLogoutRedirectUris),
				CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
		})
	return api.ListClients200JSONResponse{Items: items, NextCursor: next}, nil
}

// GetClient returns a client; 404 when there is none.
func (c Clients) GetClient(ctx context.Context, req api.GetClientRequestObject) (api.GetClientResponseObject, error) {
	if err := readAsAdmin(ctx, c.Queries); err != nil {
		return nil, err
	}
	row, err := c.Queries.GetClient(ctx, req.Id)
	if err != nil {
		return nil, dberr.Translate(err, clientNotFound)
	}
	return api.GetClient200JSONResponse(clientOf(row)), nil
}

// DeleteClient deletes a client; its tokens stop working at once. Returns
// 404 when there is none.
func (c Clients) DeleteClient(ctx context.Context, req api.DeleteClientRequestObject) (api.DeleteClientResponseObject, error) {
	err := asAdmin(ctx, c.Pool, c.Sessions, func(q *db.Queries) error {
		n, err := q.DeleteClient(ctx, req.Id)
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.NotFound, clientNotFound)
		}
		// The sessions of people who signed in through it end too.
		if err := c.Sessions.EndClient(ctx, q, req.Id); err != nil {
			return err
		}
		return c.Sessions.RevokeClient(ctx, q, req.Id, math.MaxInt64)
	})
	if err != nil {
		return nil, err
	}
	c.Audit.Record(ctx, audit.Event{Type: audit.ClientDeleted, Subject: "client:" + req.Id})
	return api.DeleteClient204Response{}, nil
}

// RotateClientSecret gives a client a new secret, shown only this once; the
// old secret and the tokens issued with it stop working at once. Returns
// 404 when there is no such client.
func (c Clients) RotateClientSecret(ctx context.Context, req api.RotateClientSecretRequestObject) (api.RotateClientSecretResponseObject, error) {
	secret, hash := accounts.NewClientSecret()
	var row db.GetClientRow
	err := asAdmin(ctx, c.Pool, c.Sessions, func(q *db.Queries) error {
		version, err := q.SetClientSecret(ctx, db.SetClientSecretParams{ClientID: req.Id, SecretHash: hash})
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := q.GetClient(ctx, req.Id); err == nil {
				return problem.New(problem.Conflict, "A public client has no secret.")
			}
		}
		if err != nil {
			return dberr.Translate(err, clientNotFound)
		}
		if err := c.Sessions.RevokeClient(ctx, q, req.Id, version); err != nil {
			return err
		}
		row, err = q.GetClient(ctx, req.Id)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.Audit.Record(ctx, audit.Event{Type: audit.ClientSecretRotated, Subject: "client:" + req.Id})
	return api.RotateClientSecret200JSONResponse{
		Body:    withSecret(clientOf(row), secret),
		Headers: api.RotateClientSecret200ResponseHeaders{CacheControl: "no-store"},
	}, nil
}

// clientOf converts a client's row into the API's MachineClient.
func clientOf(r db.GetClientRow) api.MachineClient {
	return api.MachineClient{ClientId: r.ClientID, Name: r.Name, Roles: nonNil(r.Roles), Public: r.Public,
		RedirectUris: nonNil(r.RedirectUris), PostLogoutRedirectUris: nonNil(r.PostLogoutRedirectUris),
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
}

// withSecret is c with its secret, to show once; a public client has none.
func withSecret(c api.MachineClient, secret string) api.MachineClientWithSecret {
	w := api.MachineClientWithSecret{ClientId: c.ClientId, Name: c.Name, Roles: c.Roles, Public: c.Public,
		RedirectUris: c.RedirectUris, PostLogoutRedirectUris: c.PostLogoutRedirectUris, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if secret != "" {
		w.ClientSecret = &secret
	}
	return w
}
