package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/pglocal"
	"github.com/rolegate/rolegate/internal/server"
	"github.com/rolegate/rolegate/token"
)

// memoryFigures is rolegate's RSS at idle and after presenting distinct
// tokens.
type memoryFigures struct {
	idle, seeded  int64
	afterLoad     int64
	tokens        int
	first, second int64 // after the first batch of distinct tokens, and a second
	firstRun      result
	secondRun     result
}

// memory mints 2×n distinct valid tokens for the bench user, signed with
// rolegate's own signing key, and presents them to GET /identify/me, one
// batch after the other, reading rolegate's RSS after each: once the token
// cache is full, the second batch must leave RSS where the first did.
func (w *wrk) memory(ctx context.Context, rg *process, s seeded, n int, idle, seededRSS int64) (memoryFigures, error) {
	m := memoryFigures{idle: idle, seeded: seededRSS, afterLoad: rg.rss(), tokens: n}
	tokens, err := minter(ctx, filepath.Join(w.dir, "data"), s.token)
	if err != nil {
		return m, err
	}
	defer tokens.close()
	for batch := range 2 {
		path := filepath.Join(w.dir, "tokens"+strconv.Itoa(batch))
		if err := tokens.write(path, n); err != nil {
			return m, err
		}
		r, err := w.present(ctx, rg, path)
		if err != nil {
			return m, err
		}
		if r.Non2xx > 0 {
			return m, fmt.Errorf("%d of the minted tokens were refused", r.Non2xx)
		}
		if batch == 0 {
			m.first, m.firstRun = rg.rss(), r
		} else {
			m.second, m.secondRun = rg.rss(), r
		}
	}
	return m, nil
}

// present sends each token of path to rolegate at least once.
func (w *wrk) present(ctx context.Context, rg *process, path string) (result, error) {
	marker := path + ".done"
	args := []string{"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns), "-d600s", "--timeout", "10s",
		"-s", filepath.Join(w.dir, "tokens.lua"), rg.url("/identify/me"), "--", path, marker, strconv.Itoa(w.threads)}
	return w.exec(ctx, target{server: rg}, args, func() bool {
		for id := range w.threads {
			if _, err := os.Stat(marker + "." + strconv.Itoa(id)); err != nil {
				return false
			}
		}
		return true
	})
}

// tokenMinter signs access tokens as rolegate does, with the key rolegate
// signs with: it attaches to the embedded PostgreSQL and opens the sealed
// signing key with the data directory's master key.
type tokenMinter struct {
	pool    *pgxpool.Pool
	pg      *pglocal.Server
	tokens  *token.Manager
	subject token.Subject
}

func minter(ctx context.Context, dataDir, sample string) (*tokenMinter, error) {
	pg, err := pglocal.Start(ctx, pglocal.Options{Dir: dataDir, Attach: true})
	if err != nil {
		return nil, err
	}
	m := &tokenMinter{pg: pg}
	if m.pool, err = pgxpool.New(ctx, pg.URL()); err != nil {
		m.close()
		return nil, err
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		m.close()
		return nil, err
	}
	if cfg.MasterKey, err = token.LoadOrCreateKey(filepath.Join(dataDir, "master.key")); err != nil {
		m.close()
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	store, err := server.KeyStore(m.pool, cfg, nil, &audit.Log{Pool: m.pool, Logger: logger})
	if err != nil {
		m.close()
		return nil, err
	}
	ks, _, err := store.Sync(ctx)
	if err != nil {
		m.close()
		return nil, err
	}
	if m.tokens, err = token.New(token.Config{Keys: &ks, Issuer: issuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL, Leeway: 30 * time.Second}); err != nil {
		m.close()
		return nil, err
	}
	c, err := m.tokens.Verify(sample)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("the bench user's token does not verify with the key found: %w", err)
	}
	m.subject = token.Subject{UserID: c.UserID, Email: c.Email, EmailVerified: c.EmailVerified, Roles: c.Roles, SessionID: c.SessionID, Version: c.Version}
	return m, nil
}

// write writes n new tokens to path, one per line.
func (m *tokenMinter) write(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b := bufio.NewWriter(f)
	for range n {
		raw, _, err := m.tokens.Issue(m.subject)
		if err != nil {
			return err
		}
		_, _ = io.WriteString(b, raw+"\n")
	}
	return b.Flush()
}

func (m *tokenMinter) close() {
	if m.pool != nil {
		m.pool.Close()
	}
	_ = m.pg.Stop(context.Background())
}

// profile writes a CPU profile of rolegate (built with TAGS=pprof) taken
// during a wrk run on t.
func profile(ctx context.Context, w *wrk, t target, flood bool, s seeded, path string) error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if flood {
			// The flood's own run is 5 s, the profile 10 s: twice.
			for range 2 {
				if _, err = w.flood(ctx, t, s); err != nil {
					break
				}
			}
		} else {
			_, err = w.run(ctx, t, 12*time.Second, nil)
		}
		errc <- err
	}()
	time.Sleep(time.Second)
	resp, err := http.Get("http://" + debugAddr + "/debug/pprof/profile?seconds=10")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s (build rolegate with make build TAGS=pprof)", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return err
	}
	return <-errc
}
