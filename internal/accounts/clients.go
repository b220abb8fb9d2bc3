package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/problem"
)

// NewClientSecret returns a machine client's secret, 256 random bits, and
// the SHA-256 under which it is kept: a secret of that entropy needs no
// slow password hash.
func NewClientSecret() (secret string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	return secret, h[:]
}

// NewClient is a client to register.
type NewClient struct {
	Name  string
	Roles []string
	// Public clients get no secret.
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// CreateClient registers c in q's transaction and returns it with its
// secret, to show once ("" for a public client). Its roles must exist, and
// its redirect URIs follow authorize.CheckRedirectURI: an Invalid problem
// naming the field (body.roles.N, body.redirect_uris.N) otherwise.
func CreateClient(ctx context.Context, q *db.Queries, c NewClient) (db.GetClientRow, string, error) {
	var fields []api.FieldError
	for name, uris := range map[string][]string{"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs} {
		for i, u := range uris {
			if why := authorize.CheckRedirectURI(u); why != "" {
				fields = append(fields, api.FieldError{Field: "body." + name + "." + strconv.Itoa(i), Message: why})
			}
		}
	}
	if len(fields) > 0 {
		slices.SortFunc(fields, func(a, b api.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return db.GetClientRow{}, "", &problem.Error{Kind: problem.Invalid, Detail: "A redirect URI is not acceptable.", Fields: fields}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "cl_" + base64.RawURLEncoding.EncodeToString(b[:])
	p := db.CreateClientParams{ClientID: id, Name: c.Name, Public: c.Public,
		RedirectUris: nonNil(c.RedirectURIs), PostLogoutRedirectUris: nonNil(c.PostLogoutRedirectURIs)}
	var secret string
	if !c.Public {
		secret, p.SecretHash = NewClientSecret()
	}
	internal, err := q.CreateClient(ctx, p)
	if err != nil {
		return db.GetClientRow{}, "", err
	}
	if err := q.GrantClientRoles(ctx, db.GrantClientRolesParams{ID: internal, Names: nonNil(c.Roles)}); err != nil {
		return db.GetClientRow{}, "", err
	}
	row, err := q.GetClient(ctx, id)
	if err != nil {
		return row, "", err
	}
	for i, r := range c.Roles {
		if !slices.Contains(row.Roles, r) {
			return row, "", &problem.Error{Kind: problem.Invalid, Detail: fmt.Sprintf("There is no role %q.", r),
				Fields: []api.FieldError{{Field: "body.roles." + strconv.Itoa(i), Message: "is not a role"}}}
		}
	}
	return row, secret, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
