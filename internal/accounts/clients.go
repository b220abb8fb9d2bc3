package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
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

// CreateClient makes a machine client named name holding roles, which must
// exist (an Invalid problem naming body.roles.N otherwise), in q's
// transaction, and returns it with its secret, to show once.
func CreateClient(ctx context.Context, q *db.Queries, name string, roles []string) (db.GetClientRow, string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "cl_" + base64.RawURLEncoding.EncodeToString(b[:])
	secret, hash := NewClientSecret()
	internal, err := q.CreateClient(ctx, db.CreateClientParams{ClientID: id, Name: name, SecretHash: hash})
	if err != nil {
		return db.GetClientRow{}, "", err
	}
	if err := q.GrantClientRoles(ctx, db.GrantClientRolesParams{ID: internal, Names: roles}); err != nil {
		return db.GetClientRow{}, "", err
	}
	row, err := q.GetClient(ctx, id)
	if err != nil {
		return row, "", err
	}
	for i, r := range roles {
		if !slices.Contains(row.Roles, r) {
			return row, "", &problem.Error{Kind: problem.Invalid, Detail: fmt.Sprintf("There is no role %q.", r),
				Fields: []api.FieldError{{Field: "body.roles." + strconv.Itoa(i), Message: "is not a role"}}}
		}
	}
	return row, secret, nil
}
