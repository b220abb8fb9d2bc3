package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/resource"
	"github.com/rolegate/rolegate/token"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// machineClient creates a machine client with roles on e through the API
// and returns its id and secret.
func machineClient(t *testing.T, e *apitest.Env, roles string) (id, secret string) {
	t.Helper()
	admin := e.Token(t, e.CreateUser(t, "admin-"+strings.ReplaceAll(roles, ",", "-")+"@example.com", "admin"))
	req, err := http.NewRequest("POST", e.URL+"/clients", strings.NewReader(`{"name": "reports", "roles": ["`+strings.ReplaceAll(roles, ",", `","`)+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST /clients = %d %v", resp.StatusCode, err)
	}
	return c.ID, c.Secret
}

// The verifier follows a live rolegate's revocation feed: a single token
// revoked by its jti, a machine client's, as POST /token/revoke logs it, is
// refused within a second.
func TestVerifierFollowsRevocations(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	id, secret := machineClient(t, e, "resource-server")
	v, err := resource.NewVerifier(t.Context(), resource.Config{RolegateURL: e.URL, Audience: apitest.Audience, ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for v.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 2s: %v", v.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	raw, _, err := e.Tokens.Issue(token.Subject{ClientID: "cl_AAAAAAAAAAAAAAAAAAAAAA", Roles: []string{"system"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sessions.RevokeToken(context.Background(), db.New(e.Pool), c.ID, c.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := v.Verify(raw)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) || !errors.Is(err, revocation.ErrRevoked) {
				t.Fatalf("Verify of the revoked token = %v", err)
			}
			t.Logf("refused %v after the revocation", time.Since(revoked))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("a token revoked by its jti still verifies after 1s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Fail closed: without the revocation snapshot the verifier does not
// start.
func TestVerifierNeedsTheFeed(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	id, _ := machineClient(t, e, "resource-server")
	other, otherSecret := machineClient(t, e, "system")
	tests := []struct {
		name, id, secret, want string
	}{
		{"no client", "", "", "no ClientID"},
		{"a wrong secret", id, "wrong", "invalid_client"},
		{"a client without the role", other, otherSecret, "does not hold the role resource-server"},
	}
	for _, tt := range tests {
		_, err := resource.NewVerifier(t.Context(), resource.Config{RolegateURL: e.URL, Audience: apitest.Audience, ClientID: tt.id, ClientSecret: tt.secret})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewVerifier = %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}
