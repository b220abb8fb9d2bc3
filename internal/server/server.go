// Package server is rolegate's composition root: New builds the whole HTTP
// stack from its raw dependencies (configuration, spec, database pool, blob
// store, logger, clock), the same way for `rolegate serve` and for every
// test, so that the tests exercise exactly what production runs.
//
// A request passes request ids and logging, metrics (when on), panic
// recovery, CORS, the gate (routing, bearer token, x-roles, limits,
// validation) and the generated routes, and reaches the handlers.
package server

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/handlers"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/keys"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/metrics"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// Deps are what the HTTP stack is built from.
type Deps struct {
	// Config holds the settings; its JWTSecret must be set (see
	// token.LoadOrCreateKey for a key kept on disk).
	Config config.Config
	Spec   *access.Spec
	Pool   *pgxpool.Pool
	// Store keeps the documents' bytes.
	Store  *documents.Store
	Logger *slog.Logger
	// Now is the clock of issued and verified tokens; nil means time.Now.
	Now func() time.Time
	// HashParams replaces password.OWASP; tests make hashing cheap with it.
	HashParams *password.Params
	// AccessJSON, when set, takes the access log's lines directly, as
	// Logger's handler would write them (see httplog.Options.AccessJSON).
	AccessJSON io.Writer
	// FeedHeartbeat is how often an idle revocation stream sends a
	// comment; 0 means 15 seconds. Tests shorten it.
	FeedHeartbeat time.Duration
	// Mail configures the mail outbox. Its Sender, when nil, is the one
	// the configuration names (mailSender); its Logger is Logger when
	// nil. Tests shorten its timing.
	Mail mail.Options
}

// Stack is the HTTP stack with the parts of it that its callers share.
type Stack struct {
	// Handler serves every operation of the spec.
	Handler http.Handler
	// Tokens issues and verifies access tokens.
	Tokens *token.Manager
	// Hasher hashes and verifies passwords on a bounded pool of workers.
	Hasher *password.Pool
	// PDF bounds the work spent on PDFs.
	PDF *documents.Processor
	// Sessions starts, refreshes and ends sessions.
	Sessions *sessions.Service
	// Revocations is this replica's revocation state, which Handler
	// checks every token against.
	Revocations *revocation.List
	// Memberships is this replica's copy of every membership, which the
	// gate reads the org roles of x-org operations from.
	Memberships *orgs.Memberships
	// Keys are the access tokens' signing keys; nil with HS256.
	Keys *keys.Store
	// IDTokens signs OpenID Connect id tokens and verifies the hints of
	// logout requests, with keys of their own.
	IDTokens *token.IDTokens
	// IDKeys are the id tokens' signing keys.
	IDKeys *keys.Store
	// Metrics counts Handler's requests and observes the rest of the
	// stack; nil unless Config.MetricsAddr is set.
	Metrics *metrics.Metrics
	// Mail sends the mail queued with mail.Enqueue, from the start of
	// the stack until Close.
	Mail *mail.Outbox

	draining atomic.Bool
	stop     context.CancelFunc
	done     chan struct{}
}

// tokenLeeway is the clock skew allowed when checking a token's times.
const tokenLeeway = 30 * time.Second

// New builds the stack: it loads the revocation log, so that a revoked
// token is refused from the first request, and follows it until ctx ends
// or Close. Close releases the stack.
func New(ctx context.Context, d Deps) (*Stack, error) {
	cfg := d.Config
	if err := checkSignUpRoles(ctx, db.New(d.Pool), cfg); err != nil {
		return nil, err
	}
	trail := &audit.Log{Pool: d.Pool, Logger: d.Logger, Now: d.Now}
	tokens, keyStore, secret, err := signing(ctx, d, trail)
	if err != nil {
		return nil, err
	}
	idTokens, idKeyStore, err := idSigning(ctx, d, trail)
	if err != nil {
		return nil, err
	}
	meta, err := servedSpec(ctx, cmp.Or(cfg.ThrottleIPv6Prefix, throttle.DefaultIPv6Prefix))
	if err != nil {
		return nil, err
	}
	params := password.OWASP
	if d.HashParams != nil {
		params = *d.HashParams
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("rolegate refresh tokens"))
	revoked := revocation.New(d.Now)
	sess, err := sessions.New(d.Pool, sessions.Config{
		TTL: cfg.SessionTTL, IdleTTL: cfg.RefreshTokenTTL, ReuseWindow: cfg.RefreshReuseWindow,
		AccessTTL: cfg.AccessTokenTTL, Leeway: tokenLeeway, Key: mac.Sum(nil), Now: d.Now,
		Local: revoked, Logger: d.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := revoked.CatchUp(ctx, db.New(d.Pool)); err != nil {
		return nil, fmt.Errorf("server: loading the revocation log: %w", err)
	}
	// Every membership of every organization, in memory, for the gate.
	members := orgs.NewMemberships(d.Now)
	if err := members.CatchUp(ctx, db.New(d.Pool)); err != nil {
		return nil, fmt.Errorf("server: loading the organizations' memberships: %w", err)
	}
	orgStore := orgs.NewStore(d.Pool, members, d.Logger)
	mailOpts := d.Mail
	if mailOpts.Logger == nil {
		mailOpts.Logger = d.Logger
	}
	if mailOpts.OnFailure == nil {
		mailOpts.OnFailure = func(ctx context.Context, to string, err error) {
			trail.Record(ctx, mailFailedEvent(ctx, db.New(d.Pool), to, err))
		}
	}
	if mailOpts.Sender == nil {
		if mailOpts.Sender, err = mailSender(cfg, d.Logger); err != nil {
			return nil, err
		}
	}
	s := &Stack{
		Mail:        mail.NewOutbox(d.Pool, mailOpts),
		Keys:        keyStore,
		IDTokens:    idTokens,
		IDKeys:      idKeyStore,
		Sessions:    sess,
		Revocations: revoked,
		Memberships: members,
		Tokens:      tokens,
		Hasher:      password.NewPool(cfg.HashWorkers, cfg.HashQueue, params),
		PDF: &documents.Processor{
			Slots:   documents.NewSlots(cfg.PDFWorkersPerUser, cfg.PDFWorkers),
			Timeout: cfg.PDFTimeout,
		},
	}
	limiter := throttle.New(d.Pool, d.Now, cfg.ThrottleIPv6Prefix)
	sealer, err := mfa.NewSealer(secret)
	if err != nil {
		s.Hasher.Close()
		return nil, fmt.Errorf("server: the sealer of second factors: %w", err)
	}
	pk, err := passkey.New(passkey.Config{PublicURL: cfg.PublicURL, Now: d.Now})
	if errors.Is(err, passkey.ErrPublicURL) {
		d.Logger.Warn("passkeys are off: ROLEGATE_PUBLIC_URL must be https, or http://localhost, and name a host (not an IP address)", "public_url", cfg.PublicURL)
		pk, err = nil, nil
	}
	if err != nil {
		s.Hasher.Close()
		return nil, fmt.Errorf("server: passkeys: %w", err)
	}
	impl := handlers.New(handlers.Deps{
		Pool: d.Pool, Hasher: s.Hasher, Tokens: tokens, IDTokens: idTokens, SpecRoles: d.Spec.Policy.Roles(),
		Store: d.Store, PDF: s.PDF, QuotaBytes: cfg.UserQuotaBytes, Meta: meta,
		Sessions: sess, Feed: revoked, Audit: trail, Hashing: limiter, Draining: &s.draining,
		Revocations: revoked, FeedStreams: cfg.FeedStreams, Heartbeat: d.FeedHeartbeat,
		PasswordGrant: cfg.PasswordGrant, CSRFKey: csrfKey(secret), SessionTTL: cfg.SessionTTL, ResetTTL: cfg.ResetTokenTTL,
		SignUp: cfg.SignUp, SignUpRoles: cfg.SignUpRoles, MailPerAddress: cfg.MailPerAddress, RequireVerifiedEmail: cfg.RequireVerifiedEmail,
		Sealer: sealer, Passkeys: pk, Orgs: orgStore, Memberships: members,
		BuiltInClients: []authorize.Client{docsClient(cfg.PublicURL)}, Mail: s.Mail,
		Discovery: handlers.Discovery{
			Tokens: tokens, IDTokens: idTokens, Issuer: cfg.JWTIssuer, PublicURL: cfg.PublicURL,
			JWKSMaxAge: jwksMaxAge, MetadataMaxAge: metadataMaxAge,
		},
	})
	strict := api.NewStrictHandlerWithOptions(impl, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Wrap(problem.Invalid, "The request body is malformed.", err))
		},
		// Errors handlers did not translate are database errors (a
		// database that is gone is 503) or internal.
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, dberr.Translate(err, ""))
		},
	})
	routes := gate.NewRoutes()
	api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseRouter: routes,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, paramError(err))
		},
	})
	verifier := revocation.Verifier{Tokens: tokens, List: revoked}
	gated, err := gate.New(d.Spec, gate.Options{Verifier: verifier, MaxUploadBytes: cfg.MaxUploadBytes, Throttle: limiter,
		OnThrottled: func(ctx context.Context, detail, account string) {
			trail.Record(ctx, throttledEvent(ctx, db.New(d.Pool), detail, account))
		},
		Factors: handlers.Factors{Queries: db.New(d.Pool), Passkeys: pk}, Memberships: members, RequireMFARoles: cfg.RequireMFARoles, Now: d.Now,
		OnStepUp: func(ctx context.Context, c *token.Claims, op string) {
			trail.Record(ctx, audit.Event{Type: audit.StepUpRequired, SubjectUserID: c.UserID, Subject: "user:" + strconv.FormatInt(c.UserID, 10), Detail: op})
			if s.Metrics != nil {
				s.Metrics.StepUp(op)
			}
		}}, routes)
	if err != nil {
		s.Hasher.Close()
		return nil, err
	}
	inner := s.closeWhenDraining(recoverer(cors(cfg.CORSOrigins, gated)))
	if cfg.MetricsAddr != "" {
		// Inside httplog, whose record of the request the gate names the
		// operation in; the log line's own cost is not the request's.
		ops := make([]string, 0, len(d.Spec.Policy.Rules))
		for _, r := range d.Spec.Policy.Rules {
			ops = append(ops, r.OperationID)
		}
		s.Metrics = metrics.New(metrics.Deps{Operations: ops, Pool: d.Pool, Hasher: s.Hasher, Tokens: tokens, Revocations: revoked})
		inner = s.Metrics.Middleware(inner)
	}
	s.Handler = httplog.New(httplog.Options{Logger: d.Logger, Trusted: cfg.TrustedProxies, AccessJSON: d.AccessJSON, Context: access.Slot}, inner)
	ctx, s.stop = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		wg.Go(func() { prune(ctx, sess, limiter, trail, s.Mail, pk, orgStore, d.Pool, cfg.AuditRetention, d.Logger) })
		wg.Go(func() { members.Follow(ctx, orgs.Feed{Pool: d.Pool, Logger: d.Logger}) })
		wg.Go(func() { s.Mail.Run(ctx) })
		wg.Go(func() { followKeys(ctx, s.keySets(), d.Logger) })
		revoked.Follow(ctx, revocation.Feed{Pool: d.Pool, Logger: d.Logger})
		wg.Wait()
	}()
	// Ready when the feeds are: a replica that starts serving while it
	// cannot follow a log says so on /readyz.
	deadline := time.After(5 * time.Second)
wait:
	for _, up := range []<-chan struct{}{revoked.Up(), members.Up()} {
		select {
		case <-up:
		case <-ctx.Done():
			break wait
		case <-deadline:
			break wait
		}
	}
	return s, nil
}

// mailSender is the sender cfg names: its SMTP server, or else files
// under the data directory, which only one machine sees.
func mailSender(cfg config.Config, logger *slog.Logger) (mail.Sender, error) {
	if cfg.SMTP.Host != "" {
		sender, err := mail.NewSMTP(cfg.SMTP, cfg.MailFrom, mail.SMTPOptions{})
		if err != nil {
			return nil, fmt.Errorf("server: ROLEGATE_SMTP_URL: %w", err)
		}
		logger.Info("mail: sending through an SMTP server", "smtp", cfg.SMTP.String(), "from", cfg.MailFrom)
		return sender, nil
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "mail"))
	if err != nil {
		return nil, fmt.Errorf("server: the mail directory: %w", err)
	}
	if cfg.DatabaseURL != "" {
		logger.Warn("ROLEGATE_SMTP_URL is unset: mail is written to files on this machine, not sent", "dir", dir)
	} else {
		logger.Info("mail: ROLEGATE_SMTP_URL is unset; writing each message to a file", "dir", dir)
	}
	return &mail.Files{Dir: dir, From: cfg.MailFrom, Logger: logger}, nil
}

// throttledEvent is the audit event of a block the gate reports for
// account (gate.Options.OnThrottled): it names the account, found by the
// login's canonical email, or else the email, or the client. The lookup
// happens once per block, not per refused attempt.
func throttledEvent(ctx context.Context, q *db.Queries, detail, account string) audit.Event {
	ev := audit.Event{Type: audit.Throttled, Detail: detail}
	kind, name, _ := strings.Cut(account, ":")
	switch kind {
	case "email":
		ev.Subject = name
		u, err := q.GetUserWithRolesByCanonicalEmail(ctx, name)
		if err == nil {
			ev.SubjectUserID, ev.Subject = u.ID, "user:"+strconv.FormatInt(u.ID, 10)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			httplog.Logger(ctx).Warn("audit: could not find the throttled account", "err", err)
		}
	case "user":
		if id, err := strconv.ParseInt(name, 10, 64); err == nil {
			ev.SubjectUserID, ev.Subject = id, account
		}
	case "client":
		ev.Subject = account
	}
	return ev
}

// servedSpec prepares the spec documents the server publishes, as JSON and
// YAML: the spec with each operation's access stated in its description
// (access.Policy.Describe), and its x-rate-limit, IPv6 client addresses
// counting by their /ipv6Prefix. It loads its own copy, which only
// documents.
func servedSpec(ctx context.Context, ipv6Prefix int) (handlers.Meta, error) {
	served, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return handlers.Meta{}, err
	}
	served.Policy.Describe(served)
	// The operations' x-rate-limit, in words too.
	for _, item := range served.Doc.Paths.Map() {
		for _, op := range item.Operations() {
			if ext, ok := op.Extensions[throttle.Ext]; ok {
				rule, err := throttle.Parse(ext)
				if err != nil {
					return handlers.Meta{}, err
				}
				op.Description += "\n\n**Rate limit:** " + rule.Describe(ipv6Prefix)
			}
		}
	}
	specJSON, err := served.Doc.MarshalJSON()
	if err != nil {
		return handlers.Meta{}, fmt.Errorf("server: the spec as JSON: %w", err)
	}
	specYAML, err := yaml.Marshal(served.Doc)
	if err != nil {
		return handlers.Meta{}, fmt.Errorf("server: the spec as YAML: %w", err)
	}
	return handlers.NewMeta(specYAML, specJSON)
}

// Key timing: a new signing key is published in the JWKS, which clients
// may cache for jwksMaxAge, and every replica reads the keys every
// keysPoll, so a new key waits longer than both before it signs.
const (
	jwksMaxAge   = 5 * time.Minute
	keysPoll     = 10 * time.Second
	publishAhead = jwksMaxAge + 6*keysPoll
)

// metadataMaxAge is how long clients may cache the RFC 8414 metadata, as
// long as the JWKS: it changes only with the configuration.
const metadataMaxAge = 5 * time.Minute

// docsClient is the docs page's own client (Swagger UI at /docs, whose
// Authorize dialog signs people in with the authorization code flow): a
// public client with no secret whose one redirect URI is the page's
// oauth2-redirect.html under publicURL. It is built in, not a row of
// clients, so /clients neither lists nor deletes it, and a public client
// gets no client credentials grant.
func docsClient(publicURL string) authorize.Client {
	return authorize.Client{
		ID: handlers.DocsClient, Name: "rolegate API docs", Public: true, BuiltIn: true,
		RedirectURIs: []string{publicURL + "/docs/oauth2-redirect.html"},
	}
}

// checkSignUpRoles refuses to start with sign-up open and a role of
// ROLEGATE_SIGNUP_ROLES that does not exist, which would refuse new
// addresses alone and so tell them from taken ones.
func checkSignUpRoles(ctx context.Context, q *db.Queries, cfg config.Config) error {
	if !cfg.SignUp {
		return nil
	}
	rows, err := q.ListRoles(ctx)
	if err != nil {
		return fmt.Errorf("server: reading the roles: %w", err)
	}
	for _, want := range cfg.SignUpRoles {
		if !slices.ContainsFunc(rows, func(r db.Role) bool { return r.Name == want }) {
			return fmt.Errorf("server: ROLEGATE_SIGNUP_ROLES names %q, which is no role (create it, or name another)", want)
		}
	}
	return nil
}

// mailFailedEvent is the audit event of a mail given up on: its account,
// when the address is one's, and the error, never the mail.
func mailFailedEvent(ctx context.Context, q *db.Queries, to string, err error) audit.Event {
	ev := audit.Event{Type: audit.MailFailed, Subject: "mail:" + to, Detail: err.Error()}
	if key, kerr := email.Canonical(to); kerr == nil {
		if u, uerr := q.GetUserWithRolesByCanonicalEmail(ctx, key); uerr == nil {
			ev.SubjectUserID, ev.Subject = u.ID, "user:"+strconv.FormatInt(u.ID, 10)
		}
	}
	return ev
}

// csrfKey is the key of the sign-in pages' CSRF tokens, derived from the
// secret every replica shares.
func csrfKey(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("rolegate csrf tokens"))
	return mac.Sum(nil)
}

// signing returns the token manager for the configured algorithm and the
// secret other keys are derived from: for HS256, the JWT secret; for EdDSA
// and ES256, keys from the database (made on the first start, rotated
// every KeyRotation), sealed with the master key, and the store to follow.
func signing(ctx context.Context, d Deps, trail *audit.Log) (*token.Manager, *keys.Store, []byte, error) {
	cfg := d.Config
	tc := token.Config{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL, Leeway: tokenLeeway, Now: d.Now}
	if cfg.SigningAlg == token.HS256 {
		if len(cfg.JWTSecret) == 0 {
			return nil, nil, nil, errors.New("server: HS256 signing without a JWT secret")
		}
		tc.Secret = cfg.JWTSecret
		tokens, err := token.New(tc)
		return tokens, nil, cfg.JWTSecret, err
	}
	store, err := KeyStore(d.Pool, cfg, d.Now, trail)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, _, err := store.Sync(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("server: loading the signing keys: %w", err)
	}
	tc.Keys = &ks
	tokens, err := token.New(tc)
	return tokens, store, cfg.MasterKey, err
}

// idSigning returns the id-token signer and the store of its keys, made
// on the first start (the first key signs at once) and rotated every
// KeyRotation, as the access tokens' are.
func idSigning(ctx context.Context, d Deps, trail *audit.Log) (*token.IDTokens, *keys.Store, error) {
	store, err := IDKeyStore(d.Pool, d.Config, d.Now, trail)
	if err != nil {
		return nil, nil, err
	}
	ks, _, err := store.Sync(ctx)
	if err != nil && len(d.Config.MasterKey) == 0 {
		return nil, nil, fmt.Errorf("server: loading the id-token signing keys, sealed under ROLEGATE_JWT_SECRET for want of ROLEGATE_MASTER_KEY: %w", err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("server: loading the id-token signing keys: %w", err)
	}
	ids, err := token.NewIDTokens(token.IDConfig{Keys: &ks, Issuer: d.Config.JWTIssuer, TTL: d.Config.AccessTokenTTL, Leeway: tokenLeeway, Now: d.Now})
	return ids, store, err
}

// KeyStore returns the access tokens' signing key store of cfg (EdDSA or
// ES256 signing), timed as the server times it, recording each new key in
// trail; `rolegate keys` uses it too.
func KeyStore(pool *pgxpool.Pool, cfg config.Config, now func() time.Time, trail *audit.Log) (*keys.Store, error) {
	return keyStore(pool, keys.Access, cfg.SigningAlg, cfg.MasterKey, cfg, now, trail)
}

// IDKeyStore returns the id tokens' signing key store of cfg, as KeyStore
// does the access tokens'. Its keys are sealed with the master key; with
// HS256 access tokens and no master key, with a key derived from the JWT
// secret, which every replica shares as well.
func IDKeyStore(pool *pgxpool.Pool, cfg config.Config, now func() time.Time, trail *audit.Log) (*keys.Store, error) {
	master := cfg.MasterKey
	if len(master) == 0 && cfg.SigningAlg == token.HS256 && len(cfg.JWTSecret) > 0 {
		mac := hmac.New(sha256.New, cfg.JWTSecret)
		mac.Write([]byte("rolegate id-token keys"))
		master = mac.Sum(nil)
	}
	return keyStore(pool, keys.ID, cfg.IDTokenAlg, master, cfg, now, trail)
}

// keyStore is the store of purpose's keys. A replaced key stays published
// while the tokens it signed live (id tokens live as long as access
// tokens), their leeway on either side, and a poll for every replica to
// stop signing with it.
func keyStore(pool *pgxpool.Pool, purpose, alg string, master []byte, cfg config.Config, now func() time.Time, trail *audit.Log) (*keys.Store, error) {
	return keys.New(pool, keys.Config{
		Purpose: purpose, Alg: alg, MasterKey: master, Rotation: cfg.KeyRotation,
		PublishAhead: publishAhead, Keep: cfg.AccessTokenTTL + 2*tokenLeeway + keysPoll, Now: now,
		OnCreate: func(ctx context.Context, kid string) {
			trail.Record(ctx, audit.Event{Type: audit.KeyRotated, Subject: "key:" + kid, Detail: purpose})
		},
	})
}

// keySet is a store of keys and what signs and verifies with them.
type keySet struct {
	store *keys.Store
	set   func(token.KeySet) error
}

// keySets are the stack's key sets: the access tokens' (none with HS256)
// and the id tokens'.
func (s *Stack) keySets() []keySet {
	var sets []keySet
	if s.Keys != nil {
		sets = append(sets, keySet{s.Keys, s.Tokens.SetKeys})
	}
	return append(sets, keySet{s.IDKeys, s.IDTokens.SetKeys})
}

// followKeys brings every key set up to date every keysPoll, rotating its
// keys when due, until ctx ends.
func followKeys(ctx context.Context, sets []keySet, logger *slog.Logger) {
	every(ctx, keysPoll, func() {
		for _, ks := range sets {
			if err := syncKeys(ctx, ks); err != nil && ctx.Err() == nil {
				logger.Error("signing keys: could not sync; signing with the keys known", "purpose", ks.store.Purpose(), "err", err)
			}
		}
	})
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func syncKeys(ctx context.Context, ks keySet) error {
	set, _, err := ks.store.Sync(ctx)
	if err != nil {
		return err
	}
	return ks.set(set)
}

// SyncKeys brings the signing keys of access tokens (none with HS256) and
// id tokens up to date now, rotating them when due, instead of at the next
// poll.
func (s *Stack) SyncKeys(ctx context.Context) error {
	var errs []error
	for _, ks := range s.keySets() {
		if err := syncKeys(ctx, ks); err != nil {
			errs = append(errs, fmt.Errorf("%s keys: %w", ks.store.Purpose(), err))
		}
	}
	return errors.Join(errs...)
}

// pruneEvery is how often a replica deletes dead sessions, spent
// revocations, throttling counts, audit events past retention and mail
// sent or given up long ago.
const pruneEvery = 10 * time.Minute

// prune deletes, every pruneEvery until ctx ends, dead sessions and spent
// revocations, throttling counts idle for longer than any x-rate-limit
// window (throttle.MaxWindow), audit events older than retention, and the
// outbox's mail past its own retention, passkey ceremonies expired a
// day ago (pk nil: passkeys are off), and the organizations' change log
// past its retention.
func prune(ctx context.Context, sess *sessions.Service, limiter *throttle.Limiter, trail *audit.Log, outbox *mail.Outbox, pk *passkey.Service,
	orgStore *orgs.Store, pool *pgxpool.Pool, retention time.Duration, logger *slog.Logger) {
	every(ctx, pruneEvery, func() {
		err := errors.Join(sess.Prune(ctx), limiter.Prune(ctx, throttle.MaxWindow), trail.Prune(ctx, retention), outbox.Prune(ctx),
			orgStore.Prune(ctx, sess.Now()))
		if pk != nil {
			err = errors.Join(err, pk.Prune(ctx, db.New(pool), sess.Now().Add(-24*time.Hour)))
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("pruning dead sessions", "err", err)
		}
	})
}

// closeWhenDraining answers every request with Connection: close once the
// stack drains, so that a client's connections close one by one after
// their next answer, and no kept-alive connection is left idle for
// Shutdown to close under a request the client is sending.
func (s *Stack) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// Drain makes /readyz answer 503 from now on, telling load balancers to
// stop sending this replica requests while it still serves them, makes
// every answer carry Connection: close, and ends the feeds' streams it
// serves (refusing new ones), whose clients resume on another replica:
// http.Server.Shutdown would wait for them.
func (s *Stack) Drain() {
	s.draining.Store(true)
	s.Revocations.EndSubscriptions()
	s.Memberships.EndSubscriptions()
}

// Close ends the feeds' streams, and stops following the revocation
// log, the mail outbox (once the send in progress is recorded) and the
// hashing workers.
func (s *Stack) Close() {
	s.Revocations.EndSubscriptions()
	s.Memberships.EndSubscriptions()
	s.stop()
	<-s.done
	s.Hasher.Close()
}

// paramError names the parameter that failed to bind without passing on the
// parser's own text.
func paramError(err error) error {
	var name string
	if e, ok := errors.AsType[*api.UnmarshalingParamError](err); ok {
		name = e.ParamName
	} else if e, ok := errors.AsType[*api.RequiredParamError](err); ok {
		name = e.ParamName
	} else if e, ok := errors.AsType[*api.InvalidParamFormatError](err); ok {
		name = e.ParamName
	} else {
		return problem.Wrap(problem.Invalid, "A parameter is invalid.", err)
	}
	return problem.Wrap(problem.Invalid, "Parameter "+name+" is invalid.", err)
}

// recoverer turns a panic in a handler into a logged 500, keeping the
// process alive; http.ErrAbortHandler keeps its meaning.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				httplog.Logger(r.Context()).Error("panic", "value", v)
				problem.Write(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
