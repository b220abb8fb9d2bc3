package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/config"
	"github.com/rolegate/rolegate/handlers"
	"github.com/rolegate/rolegate/migrate"
	"github.com/rolegate/rolegate/pglocal"
	"github.com/rolegate/rolegate/server"
)

const usage = `usage: rolegate <command>

commands:
  serve     serve the API on ROLEGATE_ADDR (default 127.0.0.1:8080)
  migrate   apply the database schema and exit
  help      print this text

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
	logger := newLogger(cfg, stderr)
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, logger, nil)
	case "migrate":
		return withDB(ctx, cfg, logger, func(*pgxpool.Pool) error { return nil })
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
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
// when DATABASE_URL is unset), brings its schema up to date, calls fn, and
// then closes the pool and stops the embedded server, in that order.
func withDB(ctx context.Context, cfg config.Config, logger *slog.Logger, fn func(*pgxpool.Pool) error) (err error) {
	url := cfg.DatabaseURL
	if url == "" {
		pg, err := pglocal.Start(ctx, pglocal.Options{Dir: cfg.DataDir, Logger: logger, Fsync: true})
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
	pool, err := openPool(ctx, url, cfg.DBWait)
	if err != nil {
		return err
	}
	defer pool.Close()

	steps, err := migrate.Parse(rolegate.Schema)
	if err != nil {
		return err
	}
	res, err := migrate.Apply(ctx, pool, steps)
	if err != nil {
		return err
	}
	for _, v := range res.Applied {
		logger.Info("applied schema step", "version", v, "name", steps[v-1].Name)
	}
	logger.Info("database schema is current", "version", res.Current)
	return fn(pool)
}

// openPool connects and waits, bounded by wait, for the database to answer,
// so that replicas started alongside their database do not crash-loop.
func openPool(ctx context.Context, url string, wait time.Duration) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
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
// order: stop accepting, let in-flight requests finish (bounded), close the
// pool, stop the embedded PostgreSQL. ready, if not nil, receives the
// listener's address once requests are accepted.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, ready chan<- net.Addr) error {
	return withDB(ctx, cfg, logger, func(pool *pgxpool.Pool) error {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           server.New(logger, handlers.New(pool)),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		logger.Info("serving", "addr", ln.Addr().String())
		if ready != nil {
			ready <- ln.Addr()
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		logger.Info("shutting down")
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			logger.Warn("in-flight requests cut off at the shutdown timeout", "err", err)
			_ = srv.Close()
		}
		return nil
	})
}
