package gate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/httpserve"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/token"
)

// small is the handler measured bare and behind the middleware.
var small = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"ok":true}`))
})

// BenchmarkAuthorizedGET reports the same small handler bare and behind the
// whole gate (routing, bearer token, its revocation check, x-roles,
// openapi3filter validation) for an authorized GET /identify/me. The difference is the gate's cost per
// request. Run: make bench.
func BenchmarkAuthorizedGET(b *testing.B) {
	spec, err := access.LoadSpec(b.Context(), rolegate.OpenAPIYAML)
	if err != nil {
		b.Fatal(err)
	}
	key, err := token.GenerateKey(token.EdDSA) // the default signing
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: &token.KeySet{Signing: key}, Issuer: "i", Audience: "a", TTL: time.Hour, Leeway: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := tokens.Issue(token.Subject{UserID: 1, Email: "bench@example.com", Roles: []string{"user"}, SessionID: "00000000-0000-4000-8000-000000000001", Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	// With the revocation check, as served: a state holding other
	// revocations, none of them this token's.
	revoked := revocation.New(nil)
	var rows []db.ListRevocationsRow
	later := pgtype.Timestamptz{Time: time.Now().Add(time.Hour), Valid: true}
	for i := range int64(1000) {
		sid, uid, ver := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+2), i+2, int64(5)
		rows = append(rows, db.ListRevocationsRow{Seq: 2 * i, SessionID: &sid, ExpiresAt: later},
			db.ListRevocationsRow{Seq: 2*i + 1, UserID: &uid, MinVersion: &ver, ExpiresAt: later})
	}
	revoked.Apply(rows)
	guarded, err := gate.New(spec, gate.Options{Verifier: revocation.Verifier{Tokens: tokens, List: revoked}}, small)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/identify/me", nil)
	req.Header.Set("Authorization", "Bearer "+raw)

	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", small},
		{"gate", guarded},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &httpserve.Discard{H: http.Header{}}
			bc.h.ServeHTTP(w, req) // warm the token cache
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// memberships is a fixed membership table for BenchmarkOrgScopedGET; the
// replica's own (package orgs) is measured by its BenchmarkRolesIn.
type memberships map[[2]int64][]string

func (m memberships) RolesIn(user, org int64) ([]string, bool) {
	r, ok := m[[2]int64{user, org}]
	return r, ok
}

// BenchmarkOrgScopedGET compares an operation of global x-roles (GET
// /users/{id}, admin) with one of x-org (GET /orgs/{orgId}, org:* or
// admin) behind the whole gate, each with one integer path parameter, for
// a caller admitted by their role: the difference is the cost of the
// org-scoped check. Run: make bench.
func BenchmarkOrgScopedGET(b *testing.B) {
	spec, err := access.LoadSpec(b.Context(), rolegate.OpenAPIYAML)
	if err != nil {
		b.Fatal(err)
	}
	key, err := token.GenerateKey(token.EdDSA)
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: &token.KeySet{Signing: key}, Issuer: "i", Audience: "a", TTL: time.Hour, Leeway: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	admin, _, err := tokens.Issue(token.Subject{UserID: 1, Email: "admin@example.com", Roles: []string{"admin"}, Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	member, _, err := tokens.Issue(token.Subject{UserID: 2, Email: "member@example.com", Roles: []string{"user"}, Version: 1})
	if err != nil {
		b.Fatal(err)
	}
	m := memberships{}
	for org := range int64(100_000) {
		m[[2]int64{2 + org%1000, org + 1}] = []string{"viewer"}
	}
	guarded, err := gate.New(spec, gate.Options{Verifier: revocation.Verifier{Tokens: tokens, List: revocation.New(nil)}, Memberships: m}, small)
	if err != nil {
		b.Fatal(err)
	}
	global := httptest.NewRequest("GET", "/users/7", nil)
	global.Header.Set("Authorization", "Bearer "+admin)
	scoped := httptest.NewRequest("GET", "/orgs/1001", nil) // user 2 is a viewer of org 1001
	scoped.Header.Set("Authorization", "Bearer "+member)
	for _, bc := range []struct {
		name string
		req  *http.Request
	}{
		{"global", global},
		{"org", scoped},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := httptest.NewRecorder()
			guarded.ServeHTTP(rec, bc.req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s: status %d %s", bc.req.URL, rec.Code, rec.Body)
			}
			w := &httpserve.Discard{H: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				guarded.ServeHTTP(w, bc.req)
			}
		})
	}
}
