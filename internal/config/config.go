// Package config reads rolegate's settings from the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/internal/dbtimeout"
	"github.com/rolegate/rolegate/internal/mail"
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
	// PublicURL is the URL clients reach rolegate by, without a trailing
	// slash (ROLEGATE_PUBLIC_URL, an absolute http or https URL, default
	// "http://" + Addr): the base of every absolute URL rolegate publishes,
	// such as the endpoints of its RFC 8414 metadata, and the issuer unless
	// JWTIssuer is set. Published URLs never come from a request's Host or
	// X-Forwarded-* headers, which any client may set.
	PublicURL string
	// MetricsAddr is the address of the separate listener serving
	// Prometheus metrics at /metrics (ROLEGATE_METRICS_ADDR, host:port);
	// empty means no metrics are served.
	MetricsAddr string
	// LogLevel is the minimum level logged (ROLEGATE_LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// LogFormat is "text", "json" or "" for text on a terminal and JSON otherwise
	// (ROLEGATE_LOG_FORMAT).
	LogFormat string
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGINT/SIGTERM (ROLEGATE_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long a replica keeps serving after SIGINT or
	// SIGTERM, answering 503 on /readyz, before it stops accepting
	// connections, so that a load balancer can stop sending it requests
	// (ROLEGATE_SHUTDOWN_DELAY; 0 for none).
	ShutdownDelay time.Duration
	// DBWait bounds how long start-up waits for the database to answer
	// (ROLEGATE_DB_WAIT).
	DBWait time.Duration
	// DBTimeout bounds each database call a request makes: the wait for a
	// connection and each statement (ROLEGATE_DB_TIMEOUT, default 1s, at
	// most 1m); past it the request gets 503, so that a database that
	// hangs does not hang the requests that need it.
	DBTimeout time.Duration

	// JWTSecret is the HS256 key for access tokens (ROLEGATE_JWT_SECRET, at
	// least 32 bytes). Empty means a random key generated once and kept in
	// DataDir.
	JWTSecret []byte
	// SigningAlg is how access tokens are signed (ROLEGATE_SIGNING_ALG):
	// "EdDSA" (the default) or "ES256" with rotating keys kept in the
	// database, or "HS256" with JWTSecret. Unset with JWTSecret set means
	// HS256, so that a deployment that set only the secret works as before.
	SigningAlg string
	// IDTokenAlg is how OpenID Connect id tokens are signed
	// (ROLEGATE_ID_TOKEN_ALG): "RS256" (the default, which OpenID Connect
	// Core 1.0 section 15.1 requires every provider to offer), "ES256" or
	// "EdDSA", with rotating keys of their own kept in the database.
	IDTokenAlg string
	// MasterKey seals the private signing keys in the database
	// (ROLEGATE_MASTER_KEY, at least 32 bytes; replicas must share it).
	// Empty means a key generated once and kept in DataDir, which only an
	// embedded database may rely on; with HS256 access tokens, the id
	// tokens' keys are then sealed with a key derived from JWTSecret.
	MasterKey []byte
	// KeyRotation is how often a new signing key is made
	// (ROLEGATE_KEY_ROTATION, default 24h).
	KeyRotation time.Duration
	// AuditRetention is how long audit events are kept
	// (ROLEGATE_AUDIT_RETENTION, default 2160h, 90 days).
	AuditRetention time.Duration
	// JWTIssuer is the iss of access tokens and the issuer of the RFC 8414
	// metadata (ROLEGATE_JWT_ISSUER; default PublicURL, as RFC 8414 wants).
	// JWTAudience is their aud (ROLEGATE_JWT_AUDIENCE; default "rolegate").
	JWTIssuer, JWTAudience string
	// AccessTokenTTL is the lifetime of access tokens (ROLEGATE_ACCESS_TOKEN_TTL).
	AccessTokenTTL time.Duration
	// SessionTTL is the absolute lifetime of a session, from its login
	// (ROLEGATE_SESSION_TTL, default 30 days).
	SessionTTL time.Duration
	// RefreshTokenTTL is how long a session lives unused: it ends unless
	// refreshed within this time of its last use (ROLEGATE_REFRESH_TOKEN_TTL,
	// default 7 days).
	RefreshTokenTTL time.Duration
	// RefreshReuseWindow is how long after its use a refresh token may be
	// presented again and get the same answer, for clients that refresh
	// twice at once (ROLEGATE_REFRESH_REUSE_WINDOW, default 10s); later, a
	// used token ends its session.
	RefreshReuseWindow time.Duration
	// HashWorkers is how many password hashes run at once
	// (ROLEGATE_HASH_WORKERS; 0 means half the CPUs, at least one).
	HashWorkers int
	// HashQueue is how many logins may wait for a worker before /token
	// answers 503 (ROLEGATE_HASH_QUEUE; 0 means password.QueuePerWorker
	// per worker).
	HashQueue int
	// AdminPassword is the password of the first administrator, created on
	// the first start of an empty database (ROLEGATE_ADMIN_PASSWORD). Empty
	// means a generated one, printed once.
	AdminPassword string
	// MaxUploadBytes bounds uploaded documents (ROLEGATE_MAX_UPLOAD_BYTES);
	// other bodies are bounded by the spec's x-max-body-bytes.
	MaxUploadBytes int64
	// SignUp says whether people may create accounts for themselves
	// (ROLEGATE_SIGNUP, closed or open; default closed), and SignUpRoles
	// the roles their accounts get (ROLEGATE_SIGNUP_ROLES, default user).
	SignUp      bool
	SignUpRoles []string
	// RequireMFARoles are the roles whose holders must sign in with a
	// second factor (ROLEGATE_REQUIRE_MFA_ROLES, comma-separated; default
	// none): until they enrol one, their tokens reach only the enrolment
	// operations.
	RequireMFARoles []string
	// MailPerAddress bounds the mail rolegate queues to one address in an
	// hour, whatever the reason (ROLEGATE_MAIL_PER_ADDRESS, default 5,
	// from 1 to 1000).
	MailPerAddress int
	// RequireVerifiedEmail refuses sign-in to accounts whose address is
	// not verified, mailing them a new link instead
	// (ROLEGATE_REQUIRE_VERIFIED_EMAIL, true or false; default false).
	RequireVerifiedEmail bool
	// ResetTokenTTL is how long a password reset mail's link works
	// (ROLEGATE_RESET_TOKEN_TTL, default 30m, from 5m to 24h).
	ResetTokenTTL time.Duration
	// PasswordGrant says whether /token takes grant_type=password
	// (ROLEGATE_PASSWORD_GRANT, on or off; default on). RFC 9700 section
	// 2.4 says it must not be used: people sign in through the
	// authorization endpoint instead.
	PasswordGrant bool
	// CORSOrigins are the browser origins allowed to call the API
	// (ROLEGATE_CORS_ORIGINS, comma-separated; empty sends no CORS headers).
	CORSOrigins []string
	// TrustedProxies are the proxies in front of rolegate whose
	// X-Forwarded-For tells the client's address, for throttling, sessions
	// and the audit trail (ROLEGATE_TRUSTED_PROXIES, comma-separated CIDRs
	// or addresses; empty trusts none: the peer's address counts).
	TrustedProxies []netip.Prefix
	// ThrottleIPv6Prefix is the length in bits of the IPv6 network that
	// counts as one client address for throttling
	// (ROLEGATE_THROTTLE_IPV6_PREFIX, default 64, from 32 to 128); IPv4
	// addresses count one by one.
	ThrottleIPv6Prefix int
	// BlobURL is the bucket for document bytes (ROLEGATE_BLOB_URL); empty
	// means a directory under DataDir.
	BlobURL string
	// UserQuotaBytes bounds the bytes one user's documents take together
	// (ROLEGATE_USER_QUOTA_BYTES, default 1 GiB; 0 means no bound).
	UserQuotaBytes int64
	// PDFWorkers is how many PDF operations (reading an upload, splitting)
	// run at once on this replica (ROLEGATE_PDF_WORKERS; 0 means one per
	// CPU); beyond that they are refused with 503.
	PDFWorkers int
	// PDFWorkersPerUser is how many of those one user may run at once
	// (ROLEGATE_PDF_WORKERS_PER_USER, default 2); beyond that 429.
	PDFWorkersPerUser int
	// PDFTimeout bounds one PDF operation (ROLEGATE_PDF_TIMEOUT, default
	// 30s); past it the request gets 422.
	PDFTimeout time.Duration
	// FeedStreams bounds the feeds' streams (GET /revocations/events and
	// /memberships/events, together) this replica serves at once
	// (ROLEGATE_FEED_STREAMS, default 100); beyond that they are refused
	// with 503.
	FeedStreams int
	// SMTP is the mail server (ROLEGATE_SMTP_URL, see mail.ParseSMTPURL);
	// its zero value, when the variable is unset, means messages are
	// written to files under DataDir instead. Its String form hides the
	// password.
	SMTP mail.SMTPServer
	// MailFrom is the sender of rolegate's mail (ROLEGATE_MAIL_FROM, an
	// address as in a From header; default rolegate <no-reply@…> at the
	// host of PublicURL).
	MailFrom string
}

// MinSecretLen is the shortest JWT secret accepted (RFC 7518 section 3.2:
// at least the hash size for HS256).
const MinSecretLen = 32

// Load reads the configuration through getenv (os.Getenv in production) and
// reports every invalid value at once.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		DataDir:     or(getenv("ROLEGATE_DATA_DIR"), ".data"),
		Addr:        or(getenv("ROLEGATE_ADDR"), "127.0.0.1:8080"),
		MetricsAddr: getenv("ROLEGATE_METRICS_ADDR"),
	}
	var errs []string
	if v := getenv("ROLEGATE_PUBLIC_URL"); v != "" {
		var err error
		if c.PublicURL, err = publicURL(v); err != nil {
			errs = append(errs, "ROLEGATE_PUBLIC_URL: "+err.Error())
		}
	} else if host, _, err := net.SplitHostPort(c.Addr); err != nil || host == "" || net.ParseIP(host).IsUnspecified() {
		// Listening on every interface: the default would publish a URL
		// nobody can reach rolegate by, and bake it into every token.
		errs = append(errs, fmt.Sprintf("ROLEGATE_PUBLIC_URL: unset, and ROLEGATE_ADDR %q names no host that clients could reach: set it to the URL clients reach rolegate by, such as https://auth.example.com", c.Addr))
	} else {
		c.PublicURL = "http://" + c.Addr
	}
	if c.MetricsAddr != "" {
		if err := checkHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, "ROLEGATE_METRICS_ADDR: "+err.Error())
		} else if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			errs = append(errs, "ROLEGATE_METRICS_ADDR: must differ from ROLEGATE_ADDR: metrics are never served on the API's listener")
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("ROLEGATE_LOG_LEVEL"), "info"))); err != nil {
		errs = append(errs, "ROLEGATE_LOG_LEVEL: want debug, info, warn or error")
	}
	switch c.LogFormat = strings.ToLower(getenv("ROLEGATE_LOG_FORMAT")); c.LogFormat {
	case "", "text", "json":
	default:
		errs = append(errs, "ROLEGATE_LOG_FORMAT: want text or json")
	}
	c.ShutdownTimeout = duration(getenv, "ROLEGATE_SHUTDOWN_TIMEOUT", 15*time.Second, &errs)
	if v := getenv("ROLEGATE_SHUTDOWN_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 10*time.Minute {
			errs = append(errs, "ROLEGATE_SHUTDOWN_DELAY: want a duration from 0 to 10m, such as 5s")
		} else {
			c.ShutdownDelay = d
		}
	}
	c.DBWait = duration(getenv, "ROLEGATE_DB_WAIT", 30*time.Second, &errs)
	if c.ResetTokenTTL = duration(getenv, "ROLEGATE_RESET_TOKEN_TTL", 30*time.Minute, &errs); c.ResetTokenTTL < 5*time.Minute || c.ResetTokenTTL > 24*time.Hour {
		errs = append(errs, fmt.Sprintf("ROLEGATE_RESET_TOKEN_TTL: %v, want 5m to 24h", c.ResetTokenTTL))
	}
	if c.DBTimeout = duration(getenv, "ROLEGATE_DB_TIMEOUT", dbtimeout.DefaultBound, &errs); c.DBTimeout > time.Minute {
		errs = append(errs, "ROLEGATE_DB_TIMEOUT: at most 1m")
	}
	c.JWTSecret = []byte(getenv("ROLEGATE_JWT_SECRET"))
	if n := len(c.JWTSecret); n > 0 && n < MinSecretLen {
		errs = append(errs, fmt.Sprintf("ROLEGATE_JWT_SECRET: must be at least %d bytes", MinSecretLen))
	}
	switch c.SigningAlg = getenv("ROLEGATE_SIGNING_ALG"); c.SigningAlg {
	case "":
		c.SigningAlg = "EdDSA"
		if len(c.JWTSecret) > 0 {
			c.SigningAlg = "HS256"
		}
	case "EdDSA", "ES256", "HS256":
	default:
		errs = append(errs, "ROLEGATE_SIGNING_ALG: want EdDSA, ES256 or HS256")
	}
	switch c.IDTokenAlg = or(getenv("ROLEGATE_ID_TOKEN_ALG"), "RS256"); c.IDTokenAlg {
	case "RS256", "ES256", "EdDSA":
	default:
		errs = append(errs, "ROLEGATE_ID_TOKEN_ALG: want RS256, ES256 or EdDSA")
	}
	c.MasterKey = []byte(getenv("ROLEGATE_MASTER_KEY"))
	if n := len(c.MasterKey); n > 0 && n < MinSecretLen {
		errs = append(errs, fmt.Sprintf("ROLEGATE_MASTER_KEY: must be at least %d bytes", MinSecretLen))
	}
	c.KeyRotation = duration(getenv, "ROLEGATE_KEY_ROTATION", 24*time.Hour, &errs)
	c.AuditRetention = duration(getenv, "ROLEGATE_AUDIT_RETENTION", 90*24*time.Hour, &errs)
	c.JWTIssuer = or(getenv("ROLEGATE_JWT_ISSUER"), c.PublicURL)
	c.JWTAudience = or(getenv("ROLEGATE_JWT_AUDIENCE"), "rolegate")
	c.AccessTokenTTL = duration(getenv, "ROLEGATE_ACCESS_TOKEN_TTL", 15*time.Minute, &errs)
	c.SessionTTL = duration(getenv, "ROLEGATE_SESSION_TTL", 30*24*time.Hour, &errs)
	c.RefreshTokenTTL = duration(getenv, "ROLEGATE_REFRESH_TOKEN_TTL", 7*24*time.Hour, &errs)
	c.RefreshReuseWindow = duration(getenv, "ROLEGATE_REFRESH_REUSE_WINDOW", 10*time.Second, &errs)
	if c.RefreshReuseWindow > time.Minute {
		errs = append(errs, "ROLEGATE_REFRESH_REUSE_WINDOW: at most 1m, or a stolen refresh token stays usable that long after its owner used it")
	}
	c.HashWorkers = integer(getenv, "ROLEGATE_HASH_WORKERS", 0, 0, 1024, &errs)
	c.HashQueue = integer(getenv, "ROLEGATE_HASH_QUEUE", 0, 0, 1<<16, &errs)
	c.AdminPassword = getenv("ROLEGATE_ADMIN_PASSWORD")
	c.MaxUploadBytes = int64(integer(getenv, "ROLEGATE_MAX_UPLOAD_BYTES", 20<<20, 1024, 1<<30, &errs))
	c.BlobURL = getenv("ROLEGATE_BLOB_URL")
	c.UserQuotaBytes = int64(integer(getenv, "ROLEGATE_USER_QUOTA_BYTES", 1<<30, 0, math.MaxInt, &errs))
	c.PDFWorkers = integer(getenv, "ROLEGATE_PDF_WORKERS", 0, 0, 1024, &errs)
	c.PDFWorkersPerUser = integer(getenv, "ROLEGATE_PDF_WORKERS_PER_USER", 2, 1, 1024, &errs)
	c.FeedStreams = integer(getenv, "ROLEGATE_FEED_STREAMS", 100, 1, 1<<16, &errs)
	c.PDFTimeout = duration(getenv, "ROLEGATE_PDF_TIMEOUT", 30*time.Second, &errs)
	for _, p := range strings.Split(getenv("ROLEGATE_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, err2 := netip.ParseAddr(p)
			if err2 != nil {
				errs = append(errs, fmt.Sprintf("ROLEGATE_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an address", p))
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	c.ThrottleIPv6Prefix = integer(getenv, "ROLEGATE_THROTTLE_IPV6_PREFIX", 64, 32, 128, &errs)
	switch v := getenv("ROLEGATE_SIGNUP"); v {
	case "", "closed":
	case "open":
		c.SignUp = true
	default:
		errs = append(errs, fmt.Sprintf("ROLEGATE_SIGNUP: %q, want closed or open", v))
	}
	c.SignUpRoles = []string{"user"}
	if v := getenv("ROLEGATE_SIGNUP_ROLES"); v != "" {
		c.SignUpRoles = roleList(v)
	}
	c.MailPerAddress = integer(getenv, "ROLEGATE_MAIL_PER_ADDRESS", 5, 1, 1000, &errs)
	c.RequireMFARoles = roleList(getenv("ROLEGATE_REQUIRE_MFA_ROLES"))
	switch v := getenv("ROLEGATE_REQUIRE_VERIFIED_EMAIL"); v {
	case "", "false":
	case "true":
		c.RequireVerifiedEmail = true
	default:
		errs = append(errs, fmt.Sprintf("ROLEGATE_REQUIRE_VERIFIED_EMAIL: %q, want true or false", v))
	}
	switch v := getenv("ROLEGATE_PASSWORD_GRANT"); v {
	case "", "on":
		c.PasswordGrant = true
	case "off":
	default:
		errs = append(errs, fmt.Sprintf("ROLEGATE_PASSWORD_GRANT: %q, want on or off", v))
	}
	for _, o := range strings.Split(getenv("ROLEGATE_CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := checkOrigin(o); err != nil {
			errs = append(errs, "ROLEGATE_CORS_ORIGINS: "+err.Error())
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if v := getenv("ROLEGATE_SMTP_URL"); v != "" {
		var err error
		if c.SMTP, err = mail.ParseSMTPURL(v); err != nil {
			// Never the value: it may hold the password.
			errs = append(errs, "ROLEGATE_SMTP_URL: "+err.Error())
		}
	}
	if c.MailFrom = getenv("ROLEGATE_MAIL_FROM"); c.MailFrom != "" {
		if err := checkMailFrom(c.MailFrom); err != nil {
			errs = append(errs, "ROLEGATE_MAIL_FROM: "+err.Error())
		}
	} else if c.PublicURL != "" {
		c.MailFrom = defaultMailFrom(c.PublicURL)
	}
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

// roleList is a comma-separated list of roles, without blanks or
// repeats.
func roleList(v string) []string {
	var roles []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

func integer(getenv func(string) string, name string, def, lo, hi int, errs *[]string) int {
	v := getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Sprintf("%s: want a whole number from %d to %d", name, lo, hi))
		return def
	}
	return n
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

// checkHostPort accepts a listen address such as 127.0.0.1:9090, [::1]:9090
// or :9090 (every interface).
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port such as 127.0.0.1:9090", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}

// publicURL checks ROLEGATE_PUBLIC_URL: an absolute http or https URL with
// a host, perhaps a path (behind a proxy that serves rolegate under one),
// and no credentials, query or fragment, which published URLs could not
// carry. It returns it without trailing slashes, so that paths append to
// it.
func publicURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#") {
		return "", fmt.Errorf("%q is not an absolute http or https URL without credentials, query or fragment, such as https://auth.example.com", v)
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	return u.String(), nil
}

// checkOrigin accepts an origin as browsers send it (scheme://host[:port],
// nothing more), or "*" for any origin.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
	}
	return nil
}

// checkMailFrom accepts one address, perhaps with a display name, as a
// From header carries it.
func checkMailFrom(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("must be one line")
	}
	if _, err := netmail.ParseAddress(v); err != nil {
		return fmt.Errorf("%q is not one address such as no-reply@example.com or \"Example\" <no-reply@example.com>", v)
	}
	return nil
}

// defaultMailFrom is rolegate <no-reply@host> at the host of publicURL,
// or at localhost when that host cannot be an address's domain (an IPv6
// address, say).
func defaultMailFrom(publicURL string) string {
	host := "localhost"
	if u, err := url.Parse(publicURL); err == nil {
		host = u.Hostname()
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "localhost"
	}
	from := "rolegate <no-reply@" + host + ">"
	if _, err := netmail.ParseAddress(from); err != nil {
		return "rolegate <no-reply@localhost>"
	}
	return from
}
