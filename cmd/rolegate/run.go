package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/accounts"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/dbtimeout"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/httpserve"
	"github.com/rolegate/rolegate/internal/keys"
	"github.com/rolegate/rolegate/internal/logbuf"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/pglocal"
	"github.com/rolegate/rolegate/internal/server"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

const usage = `usage: rolegate <command>

commands:
  serve                              serve the API on ROLEGATE_ADDR (default 127.0.0.1:8080)
  routes                             print every operation and the roles it admits
  user add --email E --roles a,b     create an account; the password is read from stdin
  client add --name N --roles a,b    create a machine client; its secret is printed once
  org add --slug S --name N --owner EMAIL
                                     create an organization with its first owner
  org member --org S --email E --roles a,b | --remove
                                     add a member, set their org roles, or remove them
  keys list [--purpose access|id]    list the signing keys of access and id tokens, and their states
  keys rotate [--purpose access|id]  make new signing keys now, of both purposes or the one named
                                     (each signs once published long enough)
  migrate                            apply the database schema and exit
  help                               print this text

Configuration comes from the environment; see README.md.
`

// run is the whole program: main only supplies the process's context,
// arguments, environment and standard streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = "json"
		if isTerminal(stderr) {
			cfg.LogFormat = "text"
		}
	}
	logOut, flushLog := stderr, func() {}
	if args[0] == "serve" {
		// A request's log line is then a copy into memory, written out
		// in batches, and a stuck stderr cannot hold requests up.
		buf := logbuf.New(stderr, logbuf.Options{Dropped: func(n int64) []byte {
			var line bytes.Buffer
			newLogger(cfg, &line).Warn("log lines dropped: the log destination did not keep up", "count", n)
			return line.Bytes()
		}})
		defer buf.Close()
		logOut, flushLog = buf, func() { buf.Flush() }
	}
	logger := newLogger(cfg, logOut)
	switch args[0] {
	case "serve", "user", "migrate", "keys", "client", "org":
		// Before anything is written: keys, blobs and the embedded cluster
		// under the data directory are no other OS user's business.
		if err := makePrivate(cfg.DataDir, usesDataDir(cfg)); err != nil {
			return err
		}
	}
	switch args[0] {
	case "serve":
		// JSON access lines at info go straight to the log, as slog would
		// write them, without slog's cost per line.
		var accessJSON io.Writer
		if cfg.LogFormat == "json" && cfg.LogLevel <= slog.LevelInfo {
			accessJSON = logOut
		}
		return serve(ctx, cfg, logger, accessJSON, flushLog, stdout)
	case "routes":
		return routes(stdout)
	case "user":
		return user(ctx, cfg, logger, args[1:], stdin, stdout)
	case "keys":
		return keysCmd(ctx, cfg, logger, args[1:], stdout)
	case "client":
		return clientCmd(ctx, cfg, logger, args[1:], stdout)
	case "org":
		return orgCmd(ctx, cfg, logger, args[1:], stdout)
	case "migrate":
		spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
		if err != nil {
			return err
		}
		return withDB(ctx, cfg, logger, false, spec, func(*pgxpool.Pool) error { return nil })
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// newLogger logs to w at cfg's level in cfg's format, which must be set.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// withDB opens the configured database (starting the embedded PostgreSQL
// when DATABASE_URL is unset), readies it for spec (rolegate.ApplySchema),
// calls fn, and then closes the pool and stops the embedded server, in that
// order.
//
// A short command (attach) uses the embedded PostgreSQL of a running
// `rolegate serve` rather than failing on its lock.
func withDB(ctx context.Context, cfg config.Config, logger *slog.Logger, attach bool, spec *access.Spec, fn func(*pgxpool.Pool) error) (err error) {
	url := cfg.DatabaseURL
	if url == "" {
		pg, err := pglocal.Start(ctx, pglocal.Options{Dir: cfg.DataDir, Logger: logger, Fsync: true, Attach: attach})
		if err != nil {
			return err
		}
		defer func() {
			// The caller's context is cancelled by then: stopping gets its own.
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if stopErr := pg.Stop(stopCtx); stopErr != nil {
				logger.Error("stopping embedded PostgreSQL", "err", stopErr)
			}
		}()
		url = pg.URL()
		logger.Info("embedded PostgreSQL started", "data_dir", pg.DataDir())
	}
	pool, err := openPool(ctx, url, cfg.DBWait, cfg.DBTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()

	if err := rolegate.ApplySchema(ctx, pool, spec.Policy.Roles(), logger); err != nil {
		return err
	}
	return fn(pool)
}

// usesDataDir reports whether anything is kept under the data directory:
// the embedded cluster, a generated HS256 key or the default blob bucket.
func usesDataDir(cfg config.Config) bool {
	return cfg.DatabaseURL == "" || cfg.SigningAlg == "HS256" && len(cfg.JWTSecret) == 0 || cfg.BlobURL == ""
}

// openPool connects and waits, bounded by wait, for the database to answer,
// so that replicas started alongside their database do not crash-loop. The
// pool bounds each database call of a request by callTimeout (dbtimeout),
// so that a hung database answers 503.
func openPool(ctx context.Context, url string, wait, callTimeout time.Duration) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
	dbtimeout.Configure(pcfg, callTimeout, httplog.InRequest)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("database does not answer: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serve runs the HTTP server until ctx is cancelled, then shuts down in
// order: answer 503 on /readyz while serving on for the shutdown delay, stop
// accepting, let in-flight requests finish (bounded), close the pool, stop
// the embedded PostgreSQL.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, accessJSON io.Writer, flushLog func(), stdout io.Writer) error {
	// Everything that can be checked without the database is checked first:
	// a spec with an undeclared access rule never gets to serve.
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	if err := signingKeys(&cfg, logger); err != nil {
		return err
	}
	if cfg.DatabaseURL != "" && cfg.PublicURL == "http://"+cfg.Addr && cfg.JWTIssuer == cfg.PublicURL {
		logger.Warn("ROLEGATE_PUBLIC_URL is the listen address, and the issuer of tokens: replicas on one DATABASE_URL must share one ROLEGATE_PUBLIC_URL (or ROLEGATE_JWT_ISSUER), or they refuse each other's tokens", "public_url", cfg.PublicURL)
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	return withDB(ctx, cfg, logger, false, spec, func(pool *pgxpool.Pool) error {
		stack, err := server.New(ctx, server.Deps{Config: cfg, Spec: spec, Pool: pool, Store: store, Logger: logger, AccessJSON: accessJSON})
		if err != nil {
			return err
		}
		defer stack.Close()
		created, generated, err := accounts.Bootstrap(ctx, pool, stack.Hasher, cfg.AdminPassword)
		if err != nil {
			return fmt.Errorf("creating the first administrator: %w", err)
		}
		if created {
			logger.Info("created the first administrator", "email", accounts.BootstrapEmail)
			if generated != "" {
				// Shown once, on the terminal's stdout rather than in the log.
				fmt.Fprintf(stdout, "First administrator: %s, password: %s (shown only this once)\n", accounts.BootstrapEmail, generated)
			}
		}
		if stack.Metrics != nil {
			stopMetrics, err := serveMetrics(cfg.MetricsAddr, stack.Metrics.Handler(), logger)
			if err != nil {
				return err
			}
			defer stopMetrics()
		}
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return err
		}
		srv := httpserve.New(stack.Handler, httpserve.API, logger)
		// The start-up's log is out before the first answer.
		logger.Info("serving", "addr", ln.Addr().String())
		flushLog()
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		// Not ready from now on, but still serving for the delay, so that
		// a load balancer stops sending before connections are refused.
		// Then the listener closes, and Shutdown closes idle connections (a
		// client's transport replays an idempotent request that met one)
		// and answers requests in flight with Connection: close.
		stack.Drain()
		logger.Info("shutting down", "delay", cfg.ShutdownDelay.String())
		if cfg.ShutdownDelay > 0 {
			select {
			case err := <-errc:
				return err
			case <-time.After(cfg.ShutdownDelay):
			}
		}
		// The listener closes before Shutdown starts answering with
		// "Connection: close": a client that then dials again is refused
		// (and turns to another replica), where one that dialed in the
		// instant between the two would sit in the listener's backlog and
		// be reset.
		_ = ln.Close()
		<-errc // Serve has returned: it no longer tracks the listener
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			logger.Warn("in-flight requests cut off at the shutdown timeout", "err", err)
			_ = srv.Close()
		}
		return nil
	})
}

// serveMetrics serves h (the metrics) on a listener of its own at addr,
// apart from the API's, until stop, which lets scrapes in flight finish.
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ROLEGATE_METRICS_ADDR: %w", err)
	}
	srv := httpserve.New(h, httpserve.Metrics, logger)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener failed; the API goes on without it", "err", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}, nil
}

// openStore opens ROLEGATE_BLOB_URL, or else a directory under the data
// directory.
func openStore(ctx context.Context, cfg config.Config) (*documents.Store, error) {
	u := cfg.BlobURL
	if u == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "blobs"))
		if err != nil {
			return nil, err
		}
		u = (&url.URL{Scheme: "file", Path: dir, RawQuery: "create_dir=true"}).String()
	}
	if scheme, _, _ := strings.Cut(u, "://"); !cloudBuckets && (scheme == "s3" || scheme == "gs" || scheme == "azblob") {
		return nil, fmt.Errorf("ROLEGATE_BLOB_URL: %s:// buckets are not built into this binary: build it with `make build TAGS=cloudblob`", scheme)
	}
	return documents.OpenStore(ctx, u)
}

// signingKeys fills in the key material the configured signing needs: for
// HS256, ROLEGATE_JWT_SECRET or else a key generated once and kept in the
// data directory; for EdDSA and ES256, ROLEGATE_MASTER_KEY, which replicas
// on one DATABASE_URL must share, or else, for the embedded database only,
// a master key generated once and kept in the data directory. The id
// tokens' keys are sealed with the master key; with HS256 and none, with a
// key derived from the JWT secret (server.IDKeyStore).
func signingKeys(cfg *config.Config, logger *slog.Logger) (err error) {
	if cfg.SigningAlg == "HS256" {
		if len(cfg.JWTSecret) > 0 {
			return nil
		}
		path := filepath.Join(cfg.DataDir, "jwt.key")
		if cfg.DatabaseURL != "" {
			logger.Warn("ROLEGATE_JWT_SECRET is unset: using a key kept in the data directory; replicas must share one ROLEGATE_JWT_SECRET", "path", path)
		}
		cfg.JWTSecret, err = token.LoadOrCreateKey(path)
		return err
	}
	if len(cfg.MasterKey) > 0 {
		return nil
	}
	if cfg.DatabaseURL != "" {
		return fmt.Errorf("ROLEGATE_MASTER_KEY is unset: with DATABASE_URL and %s signing every replica must seal and open the signing keys with the same master key, of at least %d bytes (or set ROLEGATE_JWT_SECRET for HS256)", cfg.SigningAlg, config.MinSecretLen)
	}
	cfg.MasterKey, err = token.LoadOrCreateKey(filepath.Join(cfg.DataDir, "master.key"))
	return err
}

// routes prints the access matrix of the spec.
func routes(stdout io.Writer) error {
	spec, err := access.LoadSpec(context.Background(), rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tPATH\tOPERATION\tACCESS")
	for _, r := range spec.Policy.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Method, r.Path, r.OperationID, r.Access())
	}
	return tw.Flush()
}

// user runs `rolegate user add`.
func user(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: rolegate user add --email E --roles admin,user (password on stdin)")
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	email := fs.String("email", "", "the account's email")
	roles := fs.String("roles", "", "comma-separated roles")
	if err := fs.Parse(args[1:]); err != nil || *email == "" || fs.NArg() > 0 {
		return errors.New("usage: rolegate user add --email E --roles admin,user (password on stdin)")
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return err
	}
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	hasher := password.NewPool(1, 1, password.OWASP)
	defer hasher.Close()
	return withDB(ctx, cfg, logger, true, spec, func(pool *pgxpool.Pool) error {
		row, err := accounts.Create(ctx, pool, hasher, *email, pw, accounts.ParseRoles(*roles))
		if err != nil {
			var pe *problem.Error
			if errors.As(err, &pe) {
				return errors.New(pe.Detail)
			}
			return err
		}
		fmt.Fprintf(stdout, "created user %d %s\n", row.ID, row.Email)
		return nil
	})
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, password.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

// keysCmd runs `rolegate keys list` and `rolegate keys rotate`: of the
// keys of both purposes, access and id tokens (only id tokens' with
// HS256), or of the one --purpose names.
func keysCmd(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	const usage = "usage: rolegate keys list|rotate [--purpose access|id]"
	if len(args) == 0 || args[0] != "list" && args[0] != "rotate" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	purpose := fs.String("purpose", "", "access or id (default both)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errors.New(usage)
	}
	stores := map[string]func(*pgxpool.Pool, config.Config, func() time.Time, *audit.Log) (*keys.Store, error){
		keys.Access: server.KeyStore, keys.ID: server.IDKeyStore,
	}
	purposes := []string{keys.Access, keys.ID}
	switch {
	case *purpose == "":
	case stores[*purpose] == nil:
		return errors.New(usage)
	default:
		purposes = []string{*purpose}
	}
	if cfg.SigningAlg == token.HS256 {
		if *purpose == keys.Access {
			return errors.New("access tokens are signed with HS256 (ROLEGATE_JWT_SECRET): there are no access-token signing keys")
		}
		purposes = []string{keys.ID}
	}
	if err := signingKeys(&cfg, logger); err != nil {
		return err
	}
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	return withDB(ctx, cfg, logger, true, spec, func(pool *pgxpool.Pool) error {
		trail := &audit.Log{Pool: pool, Logger: logger}
		var states []keys.State
		for _, p := range purposes {
			store, err := stores[p](pool, cfg, nil, trail)
			if err != nil {
				return err
			}
			sync := store.Sync
			if args[0] == "rotate" {
				sync = store.Rotate
			}
			_, st, err := sync(ctx)
			if err != nil {
				return fmt.Errorf("%s keys: %w", p, err)
			}
			states = append(states, st...)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PURPOSE\tKID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tLEAVES JWKS")
		at := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format(time.RFC3339)
		}
		for _, k := range states {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Purpose, k.Kid, k.Alg, k.Status, at(k.CreatedAt), at(k.ActiveAt), at(k.RetiredAt), at(k.UnpublishAt))
		}
		return tw.Flush()
	})
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

// Set adds v.
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// clientCmd runs `rolegate client add`.
func clientCmd(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	const usage = "usage: rolegate client add --name N [--roles system] [--redirect-uri URI]... [--post-logout-redirect-uri URI]... [--public]"
	if len(args) == 0 || args[0] != "add" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("client add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the client's name")
	roles := fs.String("roles", "", "comma-separated roles")
	var redirects, logouts listFlag
	fs.Var(&redirects, "redirect-uri", "a redirect URI of the authorization endpoint (repeatable)")
	fs.Var(&logouts, "post-logout-redirect-uri", "a redirect URI of the end-session endpoint (repeatable)")
	public := fs.Bool("public", false, "a public client (no secret; PKCE alone)")
	if err := fs.Parse(args[1:]); err != nil || *name == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	spec, err := access.LoadSpec(ctx, rolegate.OpenAPIYAML)
	if err != nil {
		return err
	}
	return withDB(ctx, cfg, logger, true, spec, func(pool *pgxpool.Pool) error {
		var row db.GetClientRow
		var secret string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) (err error) {
			row, secret, err = accounts.CreateClient(ctx, db.New(tx), accounts.NewClient{Name: *name, Roles: accounts.ParseRoles(*roles),
				Public: *public, RedirectURIs: redirects, PostLogoutRedirectURIs: logouts})
			return err
		})
		if pe, ok := errors.AsType[*problem.Error](err); ok {
			msg := pe.Detail
			for _, f := range pe.Fields {
				msg += " " + f.Field + " " + f.Message + "."
			}
			return errors.New(msg)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created client %s (%s), roles %s\n", row.ClientID, row.Name, cmp.Or(strings.Join(row.Roles, ","), "none"))
		if len(row.RedirectUris) > 0 {
			fmt.Fprintf(stdout, "redirect URIs: %s\n", strings.Join(row.RedirectUris, " "))
		}
		if secret == "" {
			fmt.Fprintln(stdout, "public client: no secret (it signs people in with PKCE)")
			return nil
		}
		fmt.Fprintf(stdout, "client_secret: %s (shown only this once)\n", secret)
		return nil
	})
}
