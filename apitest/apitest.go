// Package apitest runs the whole rolegate HTTP stack (access middleware,
// validation, handlers) on a fresh database for a test, and gives the test
// real users, real tokens and the generated client.
package apitest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/accounts"
	"github.com/rolegate/rolegate/documents"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/handlers"
	"github.com/rolegate/rolegate/password"
	"github.com/rolegate/rolegate/sdk"
	"github.com/rolegate/rolegate/server"
	"github.com/rolegate/rolegate/testdb"
	"github.com/rolegate/rolegate/token"
)

// Issuer and Audience of the tokens the test server issues and accepts.
const (
	Issuer   = "rolegate-test"
	Audience = "rolegate-test-api"
)

// Env is a running test server.
type Env struct {
	URL  string
	Pool *pgxpool.Pool
	// DatabaseURL is the test's own database.
	DatabaseURL string
	Tokens      *token.Manager
	Secret      []byte
	Doc         *openapi3.T
	Policy      *access.Policy
	Hasher      *password.Pool
	// Now is the clock of the token manager; tests may move it.
	Now func() time.Time
	// BlobDir is the directory of the document blob store.
	BlobDir string
	// PDF is the handlers' PDF processor; tests may take its Slots.
	PDF *documents.Processor
}

// Options adjust the server for a test.
type Options struct {
	HashWorkers, HashQueue int
	// HashParams replaces the cheap test parameters (e.g. to make hashing slow).
	HashParams     *password.Params
	MaxUploadBytes int64
	CORSOrigins    []string
	// QuotaBytes bounds each user's documents; zero means no bound.
	QuotaBytes int64
	// PDFWorkers and PDFWorkersPerUser bound the PDF operations at once
	// (default 8 and 2); PDFTimeout and PDFMaxDecodedBytes bound each
	// (default documents' defaults).
	PDFWorkers, PDFWorkersPerUser int
	PDFTimeout                    time.Duration
	PDFMaxDecodedBytes            int64
}

// New starts the stack on a fresh database; it stops when the test ends.
func New(tb testing.TB, opts ...Options) *Env {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	doc, err := rolegate.Spec()
	if err != nil {
		tb.Fatal(err)
	}
	policy, err := access.Load(doc)
	if err != nil {
		tb.Fatal(err)
	}
	dbURL := testdb.URL(tb)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := db.New(pool).EnsureRoles(ctx, append(policy.Roles(), TestRoles...)); err != nil {
		tb.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	e := &Env{Pool: pool, DatabaseURL: dbURL, Secret: secret, Doc: doc, Policy: policy, Now: time.Now}
	e.Tokens, err = token.New(token.Config{
		Secret: secret, Issuer: Issuer, Audience: Audience, TTL: 15 * time.Minute, Leeway: 30 * time.Second,
		Now: func() time.Time { return e.Now() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Cheap hashing parameters: the tests exercise the flow, not the cost.
	params := TestParams
	if o.HashParams != nil {
		params = *o.HashParams
	}
	e.Hasher = password.NewPool(o.HashWorkers, o.HashQueue, params)
	tb.Cleanup(e.Hasher.Close)
	e.BlobDir = tb.TempDir()
	store, err := documents.OpenStore(ctx, (&url.URL{Scheme: "file", Path: e.BlobDir}).String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	workers, perUser := o.PDFWorkers, o.PDFWorkersPerUser
	if workers == 0 {
		workers = 8
	}
	if perUser == 0 {
		perUser = 2
	}
	e.PDF = &documents.Processor{Slots: documents.NewSlots(perUser, workers), Timeout: o.PDFTimeout, MaxDecodedBytes: o.PDFMaxDecodedBytes}
	specJSON, err := rolegate.SpecJSON()
	if err != nil {
		tb.Fatal(err)
	}
	meta, err := handlers.NewMeta(rolegate.OpenAPIYAML, specJSON)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := server.New(server.Deps{
		Logger:         slog.New(slog.DiscardHandler),
		Doc:            doc,
		Policy:         policy,
		Verifier:       e.Tokens,
		MaxUploadBytes: o.MaxUploadBytes,
		CORSOrigins:    o.CORSOrigins,
		Impl: handlers.New(handlers.Deps{Pool: pool, Hasher: e.Hasher, Tokens: e.Tokens, SpecRoles: policy.Roles(), Store: store, Meta: meta,
			PDF: e.PDF, QuotaBytes: o.QuotaBytes}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// TestRoles exist in every test database besides the spec's: "outsider" is
// admitted by no operation.
var TestRoles = []string{"admin", "user", "system", "outsider", "unrelated"}

// TestParams are argon2id parameters cheap enough for tests.
var TestParams = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// User is an account made for a test.
type User struct {
	ID       int64
	Email    string
	Password string
	Roles    []string
}

// CreateUser makes an account with a random password and the given roles.
func (e *Env) CreateUser(tb testing.TB, email string, roles ...string) User {
	tb.Helper()
	pw := rand.Text()
	row, err := accounts.Create(context.Background(), e.Pool, e.Hasher, email, pw, roles)
	if err != nil {
		tb.Fatalf("apitest: create user %s: %v", email, err)
	}
	return User{ID: row.ID, Email: row.Email, Password: pw, Roles: roles}
}

// Token issues a valid token for u without logging in.
func (e *Env) Token(tb testing.TB, u User) string {
	tb.Helper()
	raw, _, err := e.Tokens.Issue(u.ID, u.Email, u.Roles)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// HTTPClient is the client the SDK uses in tests: it validates every request
// and every response against the spec.
func HTTPClient(tb testing.TB) *http.Client {
	return &http.Client{Transport: &contract{tb: tb, requests: true, base: http.DefaultTransport}}
}

// Client returns the Go SDK's client; with a token, every request carries
// it. Every request it sends and every response it receives are validated
// against the spec.
func (e *Env) Client(tb testing.TB, bearer string) *api.ClientWithResponses {
	tb.Helper()
	opts := []api.ClientOption{api.WithHTTPClient(HTTPClient(tb))}
	if bearer != "" {
		opts = append(opts, sdk.WithToken(bearer))
	}
	c, err := api.NewClientWithResponses(e.URL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Login logs u in through /token with the Go SDK and returns its client.
func (e *Env) Login(tb testing.TB, u User) *api.ClientWithResponses {
	tb.Helper()
	c, err := sdk.Login(context.Background(), e.URL, u.Email, u.Password, api.WithHTTPClient(HTTPClient(tb)))
	if err != nil {
		tb.Fatalf("apitest: login as %s: %v", u.Email, err)
	}
	return c
}
