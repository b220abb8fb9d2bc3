// Package config reads rolegate's settings from the environment.
package config

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config holds every setting of `rolegate serve` and the other subcommands.
type Config struct {
	// DatabaseURL is the PostgreSQL to use (DATABASE_URL). Empty means
	// rolegate starts its own embedded PostgreSQL under DataDir.
	DatabaseURL string
	// DataDir holds the embedded PostgreSQL cluster and other local state
	// (ROLEGATE_DATA_DIR, default ./.data).
	DataDir string
	// Addr is the address the HTTP server listens on (ROLEGATE_ADDR).
	Addr string
	// LogLevel is the minimum level logged (ROLEGATE_LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// LogFormat is "text", "json" or "" for text on a terminal and JSON otherwise
	// (ROLEGATE_LOG_FORMAT).
	LogFormat string
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGINT/SIGTERM (ROLEGATE_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// DBWait bounds how long start-up waits for the database to answer
	// (ROLEGATE_DB_WAIT).
	DBWait time.Duration
}

// Load reads the configuration through getenv (os.Getenv in production) and
// reports every invalid value at once.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		DataDir:     or(getenv("ROLEGATE_DATA_DIR"), ".data"),
		Addr:        or(getenv("ROLEGATE_ADDR"), "127.0.0.1:8080"),
	}
	var errs []string
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("ROLEGATE_LOG_LEVEL"), "info"))); err != nil {
		errs = append(errs, "ROLEGATE_LOG_LEVEL: want debug, info, warn or error")
	}
	switch c.LogFormat = strings.ToLower(getenv("ROLEGATE_LOG_FORMAT")); c.LogFormat {
	case "", "text", "json":
	default:
		errs = append(errs, "ROLEGATE_LOG_FORMAT: want text or json")
	}
	c.ShutdownTimeout = duration(getenv, "ROLEGATE_SHUTDOWN_TIMEOUT", 15*time.Second, &errs)
	c.DBWait = duration(getenv, "ROLEGATE_DB_WAIT", 30*time.Second, &errs)
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func duration(getenv func(string) string, name string, def time.Duration, errs *[]string) time.Duration {
	v := getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, name+": want a positive duration such as 30s")
		return def
	}
	return d
}
