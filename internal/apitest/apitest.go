// Package apitest runs the whole rolegate HTTP stack, built by server.New as
// for `rolegate serve`, on a fresh database for a test, and gives the test
// real users, real tokens and the generated client.
package apitest

import (
	"cmp"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/server"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/sdk"
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
	// Spec is the spec the server serves, with its access policy.
	Spec *access.Spec
	// Secret is the HS256 key of the server's tokens when
	// Options.SigningAlg is HS256.
	Secret []byte
	// Now is the server's clock (tokens, sessions, revocations); set it
	// with Options.Now.
	Now func() time.Time
	// BlobDir is the directory of the document blob store.
	BlobDir string
	// DataDir is the server's ROLEGATE_DATA_DIR, a directory of the
	// test's: without Options.SMTPURL, mail is written under DataDir/mail.
	DataDir string
	// Stack is the server's: tests issue tokens with its Tokens, create
	// accounts with its Hasher and take its PDF slots.
	*server.Stack

	masterKey []byte
}

// Options adjust the server for a test; zero values keep production's
// defaults (config.Load), except as noted.
type Options struct {
	// PublicURL is the URL the stack publishes (ROLEGATE_PUBLIC_URL) when
	// a test reaches it through something in between, such as a proxy;
	// empty means its own listener's, Env.URL.
	PublicURL string
	// Localhost makes the URL http://localhost:<port> (Env.URL and the
	// public URL), for WebAuthn, which no IP address can be the origin of.
	Localhost              bool
	HashWorkers, HashQueue int
	// HashParams replaces the cheap test parameters (e.g. to make hashing slow).
	HashParams     *password.Params
	MaxUploadBytes int64
	CORSOrigins    []string
	// QuotaBytes bounds each user's documents.
	QuotaBytes int64
	// PDFWorkers and PDFWorkersPerUser bound the PDF operations at once
	// (default 8, whatever the CPUs, and 2); PDFTimeout and
	// PDFMaxDecodedBytes bound each.
	PDFWorkers, PDFWorkersPerUser int
	PDFTimeout                    time.Duration
	PDFMaxDecodedBytes            int64
	// Now replaces the server's clock (default time.Now).
	Now func() time.Time
	// SigningAlg is the server's ROLEGATE_SIGNING_ALG (default EdDSA, as
	// in production); with HS256 tokens are signed with Env.Secret.
	SigningAlg string
	// IDTokenAlg is the server's ROLEGATE_ID_TOKEN_ALG (default RS256, as
	// in production).
	IDTokenAlg string
	// TrustLoopback makes the test's own address a trusted proxy
	// (ROLEGATE_TRUSTED_PROXIES), so that requests can pose as other
	// clients with X-Forwarded-For.
	TrustLoopback bool
	// ThrottleIPv6Prefix is ROLEGATE_THROTTLE_IPV6_PREFIX: the IPv6
	// network, in bits, that counts as one client address (default 64).
	ThrottleIPv6Prefix int
	// Replica starts a second server on the database of another Env,
	// sharing its master key, as a replica does.
	Replica *Env
	// Logger is the server's logger; nil discards.
	Logger *slog.Logger
	// AccessJSON is server.Deps.AccessJSON.
	AccessJSON io.Writer
	// FeedStreams bounds the feeds' streams served at once
	// (ROLEGATE_FEED_STREAMS).
	FeedStreams int
	// FeedHeartbeat is server.Deps.FeedHeartbeat.
	FeedHeartbeat time.Duration
	// URLIssuer makes the issuer the public URL, as in production, where
	// the tests' default is Issuer: OpenID Connect relying parties refuse
	// a provider whose issuer is not the URL they discovered it at.
	URLIssuer bool
	// NoPasswordGrant is ROLEGATE_PASSWORD_GRANT=off.
	NoPasswordGrant bool
	// SignUp is ROLEGATE_SIGNUP=open.
	SignUp bool
	// RequireVerifiedEmail is ROLEGATE_REQUIRE_VERIFIED_EMAIL=true.
	RequireVerifiedEmail bool
	// RequireMFARoles is ROLEGATE_REQUIRE_MFA_ROLES.
	RequireMFARoles []string
	// MailPerAddress is ROLEGATE_MAIL_PER_ADDRESS (default 5).
	MailPerAddress int
	// SMTPURL is ROLEGATE_SMTP_URL (see mailtest.Server.URL); empty
	// writes mail to files under Env.DataDir.
	SMTPURL string
	// Mail is server.Deps.Mail: the outbox's sender and timing.
	Mail mail.Options
}

// New starts the stack, as server.New builds it for `rolegate serve`, on a
// fresh database; it stops when the test ends.
func New(tb testing.TB, opts ...Options) *Env {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		tb.Fatal(err)
	}
	e := &Env{Spec: spec, Secret: make([]byte, 32), Now: o.Now, BlobDir: tb.TempDir(), DataDir: tb.TempDir(), masterKey: make([]byte, 32)}
	if e.Now == nil {
		e.Now = time.Now
	}
	_, _ = rand.Read(e.Secret)
	_, _ = rand.Read(e.masterKey)
	if r := o.Replica; r != nil {
		e.DatabaseURL, e.Secret, e.masterKey, e.BlobDir = r.DatabaseURL, r.Secret, r.masterKey, r.BlobDir
	} else {
		e.DatabaseURL = testdb.URL(tb)
	}
	e.Pool = testdb.Open(tb, e.DatabaseURL)
	if err := db.New(e.Pool).EnsureRoles(ctx, TestRoles); err != nil {
		tb.Fatal(err)
	}
	store, err := documents.OpenStore(ctx, (&url.URL{Scheme: "file", Path: e.BlobDir}).String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })

	env := map[string]string{"ROLEGATE_DATA_DIR": e.DataDir, "ROLEGATE_SMTP_URL": o.SMTPURL}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	// The listener first: its address is the public URL the stack
	// publishes, as ROLEGATE_PUBLIC_URL is in production.
	srv := httptest.NewUnstartedServer(nil)
	e.URL = "http://" + srv.Listener.Addr().String()
	if o.Localhost {
		e.URL = "http://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	cfg.PublicURL = cmp.Or(o.PublicURL, e.URL)
	cfg.JWTIssuer, cfg.JWTAudience = Issuer, Audience
	if o.URLIssuer {
		cfg.JWTIssuer = cfg.PublicURL
	}
	cfg.SigningAlg = cmp.Or(o.SigningAlg, cfg.SigningAlg)
	cfg.IDTokenAlg = cmp.Or(o.IDTokenAlg, cfg.IDTokenAlg)
	cfg.JWTSecret, cfg.MasterKey = e.Secret, e.masterKey
	if o.TrustLoopback {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	cfg.ThrottleIPv6Prefix = cmp.Or(o.ThrottleIPv6Prefix, cfg.ThrottleIPv6Prefix)
	cfg.HashWorkers, cfg.HashQueue, cfg.CORSOrigins = o.HashWorkers, o.HashQueue, o.CORSOrigins
	cfg.PDFWorkers, cfg.PDFWorkersPerUser = cmp.Or(o.PDFWorkers, 8), cmp.Or(o.PDFWorkersPerUser, 2)
	cfg.MaxUploadBytes = cmp.Or(o.MaxUploadBytes, cfg.MaxUploadBytes)
	cfg.UserQuotaBytes = cmp.Or(o.QuotaBytes, cfg.UserQuotaBytes)
	cfg.PDFTimeout = cmp.Or(o.PDFTimeout, cfg.PDFTimeout)
	cfg.FeedStreams = cmp.Or(o.FeedStreams, cfg.FeedStreams)
	cfg.PasswordGrant = !o.NoPasswordGrant
	cfg.SignUp, cfg.RequireVerifiedEmail = o.SignUp, o.RequireVerifiedEmail
	cfg.MailPerAddress = cmp.Or(o.MailPerAddress, cfg.MailPerAddress)
	cfg.RequireMFARoles = o.RequireMFARoles
	// Cheap hashing parameters: the tests exercise the flow, not the cost.
	params := cmp.Or(o.HashParams, &TestParams)
	e.Stack, err = server.New(ctx, server.Deps{
		Config: cfg, Spec: spec, Pool: e.Pool, Store: store, Logger: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)), AccessJSON: o.AccessJSON,
		Now: func() time.Time { return e.Now() }, HashParams: params, FeedHeartbeat: o.FeedHeartbeat, Mail: o.Mail,
	})
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(e.Stack.Close)
	e.PDF.MaxDecodedBytes = o.PDFMaxDecodedBytes
	srv.Config.Handler = e.Handler
	srv.Start()
	tb.Cleanup(srv.Close) // runs before the stack's Close: no request meets a closed stack
	// Before srv.Close, which waits for requests in flight: revocation
	// streams still open end.
	tb.Cleanup(e.Stack.Drain)
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
	raw, _, err := e.Tokens.Issue(token.Subject{UserID: u.ID, Email: u.Email, Roles: u.Roles})
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
