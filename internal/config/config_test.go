package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != ".data" || c.AccessTokenTTL != 15*time.Minute ||
		c.PublicURL != "http://127.0.0.1:8080" || c.JWTIssuer != "http://127.0.0.1:8080" || c.MaxUploadBytes != 20<<20 || len(c.CORSOrigins) != 0 || len(c.JWTSecret) != 0 {
		t.Errorf("defaults = %+v", c)
	}
	if c.UserQuotaBytes != 1<<30 || c.PDFWorkers != 0 || c.PDFWorkersPerUser != 2 || c.PDFTimeout != 30*time.Second {
		t.Errorf("document defaults: quota %d, PDF workers %d (per user %d), PDF timeout %v; want 1 GiB, 0 (one per CPU), 2, 30s",
			c.UserQuotaBytes, c.PDFWorkers, c.PDFWorkersPerUser, c.PDFTimeout)
	}
	if c.SessionTTL != 30*24*time.Hour || c.RefreshTokenTTL != 7*24*time.Hour || c.RefreshReuseWindow != 10*time.Second {
		t.Errorf("session defaults: %v, %v, %v; want 30 days, 7 days, 10s", c.SessionTTL, c.RefreshTokenTTL, c.RefreshReuseWindow)
	}
	if c.DBWait != 30*time.Second || c.DBTimeout != time.Second {
		t.Errorf("database wait %v, timeout %v; want 30s, 1s", c.DBWait, c.DBTimeout)
	}
	if c.ShutdownDelay != 0 || c.ShutdownTimeout != 15*time.Second {
		t.Errorf("shutdown delay %v, timeout %v; want 0, 15s", c.ShutdownDelay, c.ShutdownTimeout)
	}
	if c.IDTokenAlg != "RS256" {
		t.Errorf("id tokens signed with %q, want RS256 (OpenID Connect Core 1.0 section 15.1)", c.IDTokenAlg)
	}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		c, err := Load(func(k string) string { return map[string]string{"ROLEGATE_ID_TOKEN_ALG": alg}[k] })
		if err != nil || c.IDTokenAlg != alg {
			t.Errorf("ROLEGATE_ID_TOKEN_ALG=%s: %q, %v", alg, c.IDTokenAlg, err)
		}
	}
	for _, v := range []string{"0", "0s", "5s"} {
		c, err := Load(func(k string) string { return map[string]string{"ROLEGATE_SHUTDOWN_DELAY": v}[k] })
		if want, _ := time.ParseDuration(v); err != nil || c.ShutdownDelay != want {
			t.Errorf("ROLEGATE_SHUTDOWN_DELAY=%s: %v, %v", v, c.ShutdownDelay, err)
		}
	}
}

func TestLoadDocumentLimits(t *testing.T) {
	env := map[string]string{
		"ROLEGATE_USER_QUOTA_BYTES":     "5368709120",
		"ROLEGATE_PDF_WORKERS":          "8",
		"ROLEGATE_PDF_WORKERS_PER_USER": "1",
		"ROLEGATE_PDF_TIMEOUT":          "5s",
	}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.UserQuotaBytes != 5<<30 || c.PDFWorkers != 8 || c.PDFWorkersPerUser != 1 || c.PDFTimeout != 5*time.Second {
		t.Errorf("got quota %d, PDF workers %d (per user %d), timeout %v", c.UserQuotaBytes, c.PDFWorkers, c.PDFWorkersPerUser, c.PDFTimeout)
	}
	// No quota at all is a choice an operator may make.
	env = map[string]string{"ROLEGATE_USER_QUOTA_BYTES": "0"}
	if c, err := Load(func(k string) string { return env[k] }); err != nil || c.UserQuotaBytes != 0 {
		t.Errorf("ROLEGATE_USER_QUOTA_BYTES=0: %d, %v", c.UserQuotaBytes, err)
	}
}

func TestLoadRefusesBadValues(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"short secret", "ROLEGATE_JWT_SECRET", strings.Repeat("x", 31), "at least 32 bytes"},
		{"bad ttl", "ROLEGATE_ACCESS_TOKEN_TTL", "soon", "ROLEGATE_ACCESS_TOKEN_TTL"},
		{"negative ttl", "ROLEGATE_ACCESS_TOKEN_TTL", "-5m", "ROLEGATE_ACCESS_TOKEN_TTL"},
		{"bad workers", "ROLEGATE_HASH_WORKERS", "many", "ROLEGATE_HASH_WORKERS"},
		{"bad level", "ROLEGATE_LOG_LEVEL", "loud", "ROLEGATE_LOG_LEVEL"},
		{"origin with path", "ROLEGATE_CORS_ORIGINS", "https://a.example.com/app", "not an origin"},
		{"origin without scheme", "ROLEGATE_CORS_ORIGINS", "a.example.com", "not an origin"},
		{"tiny upload limit", "ROLEGATE_MAX_UPLOAD_BYTES", "10", "ROLEGATE_MAX_UPLOAD_BYTES"},
		{"negative quota", "ROLEGATE_USER_QUOTA_BYTES", "-1", "ROLEGATE_USER_QUOTA_BYTES"},
		{"quota with a unit", "ROLEGATE_USER_QUOTA_BYTES", "1GiB", "ROLEGATE_USER_QUOTA_BYTES"},
		{"no PDF work per user", "ROLEGATE_PDF_WORKERS_PER_USER", "0", "ROLEGATE_PDF_WORKERS_PER_USER"},
		{"bad PDF workers", "ROLEGATE_PDF_WORKERS", "-2", "ROLEGATE_PDF_WORKERS"},
		{"bad session TTL", "ROLEGATE_SESSION_TTL", "30d", "ROLEGATE_SESSION_TTL"},
		{"bad refresh TTL", "ROLEGATE_REFRESH_TOKEN_TTL", "0s", "ROLEGATE_REFRESH_TOKEN_TTL"},
		{"long reuse window", "ROLEGATE_REFRESH_REUSE_WINDOW", "5m", "at most 1m"},
		{"bad trusted proxy", "ROLEGATE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example.com", "ROLEGATE_TRUSTED_PROXIES"},
		{"bad PDF timeout", "ROLEGATE_PDF_TIMEOUT", "0s", "ROLEGATE_PDF_TIMEOUT"},
		{"negative shutdown delay", "ROLEGATE_SHUTDOWN_DELAY", "-1s", "ROLEGATE_SHUTDOWN_DELAY"},
		{"long shutdown delay", "ROLEGATE_SHUTDOWN_DELAY", "1h", "ROLEGATE_SHUTDOWN_DELAY"},
		{"no database timeout", "ROLEGATE_DB_TIMEOUT", "0s", "ROLEGATE_DB_TIMEOUT"},
		{"database timeout without a unit", "ROLEGATE_DB_TIMEOUT", "1", "ROLEGATE_DB_TIMEOUT"},
		{"long database timeout", "ROLEGATE_DB_TIMEOUT", "2m", "ROLEGATE_DB_TIMEOUT: at most 1m"},
		{"id tokens with HS256", "ROLEGATE_ID_TOKEN_ALG", "HS256", "ROLEGATE_ID_TOKEN_ALG: want RS256, ES256 or EdDSA"},
		{"id tokens with RS512", "ROLEGATE_ID_TOKEN_ALG", "RS512", "ROLEGATE_ID_TOKEN_ALG: want RS256, ES256 or EdDSA"},
		{"id tokens with rs256", "ROLEGATE_ID_TOKEN_ALG", "rs256", "ROLEGATE_ID_TOKEN_ALG: want RS256, ES256 or EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(func(k string) string {
				if k == tt.key {
					return tt.value
				}
				return ""
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.value) && tt.key == "ROLEGATE_JWT_SECRET" {
				t.Error("the error repeats the secret")
			}
		})
	}
}

func TestLoadCORSOrigins(t *testing.T) {
	c, err := Load(func(k string) string {
		if k == "ROLEGATE_CORS_ORIGINS" {
			return " https://app.example.com, http://localhost:4200 ,"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.CORSOrigins, "|") != "https://app.example.com|http://localhost:4200" {
		t.Errorf("origins = %q", c.CORSOrigins)
	}
}

func TestLoadMetricsAddr(t *testing.T) {
	tests := []struct {
		name, addr, metrics string
		want                string // the MetricsAddr loaded, or
		wantErr             string // part of the error
	}{
		{name: "unset: off"},
		{name: "loopback", metrics: "127.0.0.1:9090", want: "127.0.0.1:9090"},
		{name: "every interface", metrics: ":9090", want: ":9090"},
		{name: "IPv6", metrics: "[::1]:9090", want: "[::1]:9090"},
		{name: "any free port", addr: "127.0.0.1:0", metrics: "127.0.0.1:0", want: "127.0.0.1:0"},
		{name: "port alone", metrics: "9090", wantErr: "not host:port"},
		{name: "host alone", metrics: "localhost", wantErr: "not host:port"},
		{name: "named port", metrics: "127.0.0.1:http", wantErr: "the port must be a number"},
		{name: "port out of range", metrics: "127.0.0.1:70000", wantErr: "the port must be a number"},
		{name: "the API's address", metrics: "127.0.0.1:8080", wantErr: "must differ from ROLEGATE_ADDR"},
		{name: "the API's address, set", addr: "0.0.0.0:9000", metrics: "0.0.0.0:9000", wantErr: "must differ from ROLEGATE_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"ROLEGATE_ADDR": tt.addr, "ROLEGATE_METRICS_ADDR": tt.metrics}
			c, err := Load(func(k string) string { return env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "ROLEGATE_METRICS_ADDR: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one about ROLEGATE_METRICS_ADDR containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.MetricsAddr != tt.want {
				t.Fatalf("MetricsAddr = %q, %v; want %q", c.MetricsAddr, err, tt.want)
			}
		})
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	c, err := Load(func(k string) string {
		if k == "ROLEGATE_TRUSTED_PROXIES" {
			return "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.0.2.7/32 2001:db8::/32" {
		t.Errorf("TrustedProxies = %v", got)
	}
}

func TestLoadThrottleIPv6Prefix(t *testing.T) {
	tests := []struct {
		value   string
		want    int    // the prefix loaded, or
		wantErr string // part of the error
	}{
		{value: "", want: 64},
		{value: "64", want: 64},
		{value: "48", want: 48},
		{value: "32", want: 32},
		{value: "128", want: 128},
		{value: "31", wantErr: "from 32 to 128"},
		{value: "129", wantErr: "from 32 to 128"},
		{value: "/64", wantErr: "from 32 to 128"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := Load(func(k string) string { return map[string]string{"ROLEGATE_THROTTLE_IPV6_PREFIX": tt.value}[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "ROLEGATE_THROTTLE_IPV6_PREFIX: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one about ROLEGATE_THROTTLE_IPV6_PREFIX containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.ThrottleIPv6Prefix != tt.want {
				t.Fatalf("ThrottleIPv6Prefix = %d, %v; want %d", c.ThrottleIPv6Prefix, err, tt.want)
			}
		})
	}
}

// ROLEGATE_PUBLIC_URL is the base of published URLs and, unless
// ROLEGATE_JWT_ISSUER overrides it, the issuer; it defaults to http:// and
// the listen address, and a value that could not be published is refused.
func TestLoadPublicURL(t *testing.T) {
	tests := []struct {
		name             string
		env              map[string]string
		want, wantIssuer string // PublicURL and JWTIssuer loaded, or
		wantErr          string // part of the error
	}{
		{name: "default", want: "http://127.0.0.1:8080", wantIssuer: "http://127.0.0.1:8080"},
		{name: "default from the address", env: map[string]string{"ROLEGATE_ADDR": "[::1]:9000"}, want: "http://[::1]:9000", wantIssuer: "http://[::1]:9000"},
		{name: "set", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com"}, want: "https://auth.example.com", wantIssuer: "https://auth.example.com"},
		{name: "trailing slash dropped", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com/"}, want: "https://auth.example.com", wantIssuer: "https://auth.example.com"},
		{name: "with a path", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://example.com/auth//"}, want: "https://example.com/auth", wantIssuer: "https://example.com/auth"},
		{name: "with a port", env: map[string]string{"ROLEGATE_PUBLIC_URL": "http://10.0.0.5:8080"}, want: "http://10.0.0.5:8080", wantIssuer: "http://10.0.0.5:8080"},
		{name: "scheme in capitals", env: map[string]string{"ROLEGATE_PUBLIC_URL": "HTTPS://auth.example.com"}, want: "https://auth.example.com", wantIssuer: "https://auth.example.com"},
		{name: "issuer overridden", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com", "ROLEGATE_JWT_ISSUER": "rolegate"}, want: "https://auth.example.com", wantIssuer: "rolegate"},
		{name: "every interface, set", env: map[string]string{"ROLEGATE_ADDR": ":8080", "ROLEGATE_PUBLIC_URL": "https://auth.example.com"}, want: "https://auth.example.com", wantIssuer: "https://auth.example.com"},
		{name: "every interface, unset", env: map[string]string{"ROLEGATE_ADDR": ":8080"}, wantErr: `ROLEGATE_PUBLIC_URL: unset, and ROLEGATE_ADDR ":8080" names no host`},
		{name: "0.0.0.0, unset", env: map[string]string{"ROLEGATE_ADDR": "0.0.0.0:8080"}, wantErr: "ROLEGATE_PUBLIC_URL: unset"},
		{name: "[::], unset", env: map[string]string{"ROLEGATE_ADDR": "[::]:8080"}, wantErr: "ROLEGATE_PUBLIC_URL: unset"},
		{name: "no scheme", env: map[string]string{"ROLEGATE_PUBLIC_URL": "auth.example.com"}, wantErr: "not an absolute http or https URL"},
		{name: "relative", env: map[string]string{"ROLEGATE_PUBLIC_URL": "/auth"}, wantErr: "not an absolute http or https URL"},
		{name: "another scheme", env: map[string]string{"ROLEGATE_PUBLIC_URL": "ftp://auth.example.com"}, wantErr: "not an absolute http or https URL"},
		{name: "no host", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://:443"}, wantErr: "not an absolute http or https URL"},
		{name: "query", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com/?a=b"}, wantErr: "not an absolute http or https URL"},
		{name: "empty query", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com?"}, wantErr: "not an absolute http or https URL"},
		{name: "fragment", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com/#x"}, wantErr: "not an absolute http or https URL"},
		{name: "empty fragment", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com#"}, wantErr: "not an absolute http or https URL"},
		{name: "credentials", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://user:pw@auth.example.com"}, wantErr: "not an absolute http or https URL"},
		{name: "white space", env: map[string]string{"ROLEGATE_PUBLIC_URL": " https://auth.example.com"}, wantErr: "ROLEGATE_PUBLIC_URL: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.PublicURL != tt.want || c.JWTIssuer != tt.wantIssuer {
				t.Fatalf("PublicURL %q, JWTIssuer %q, %v; want %q, %q", c.PublicURL, c.JWTIssuer, err, tt.want, tt.wantIssuer)
			}
		})
	}
}

// ROLEGATE_SMTP_URL names the mail server, checked at start without
// ever repeating its password; ROLEGATE_MAIL_FROM the sender, by default
// at the host of ROLEGATE_PUBLIC_URL.
func TestLoadMail(t *testing.T) {
	const password = "hunter2-smtp-password"
	tests := []struct {
		name     string
		env      map[string]string
		wantSMTP string // the server loaded, as its String shows it
		wantFrom string
		wantErr  string // part of the error
	}{
		{name: "unset: files", wantFrom: "rolegate <no-reply@127.0.0.1>"},
		{name: "from the public URL", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com/base"}, wantFrom: "rolegate <no-reply@auth.example.com>"},
		{name: "public URL on IPv6", env: map[string]string{"ROLEGATE_PUBLIC_URL": "http://[::1]:8080"}, wantFrom: "rolegate <no-reply@localhost>"},
		{name: "from set", env: map[string]string{"ROLEGATE_MAIL_FROM": `"Example Auth" <auth@example.com>`}, wantFrom: `"Example Auth" <auth@example.com>`},
		{name: "bare from", env: map[string]string{"ROLEGATE_MAIL_FROM": "auth@example.com"}, wantFrom: "auth@example.com"},
		{
			name:     "SMTP with STARTTLS",
			env:      map[string]string{"ROLEGATE_SMTP_URL": "smtp://apikey:" + password + "@smtp.example.com:587"},
			wantSMTP: "smtp://apikey:xxxxx@smtp.example.com:587", wantFrom: "rolegate <no-reply@127.0.0.1>",
		},
		{
			name:     "SMTPS",
			env:      map[string]string{"ROLEGATE_SMTP_URL": "smtps://smtp.example.com"},
			wantSMTP: "smtps://smtp.example.com:465", wantFrom: "rolegate <no-reply@127.0.0.1>",
		},
		{name: "from not an address", env: map[string]string{"ROLEGATE_MAIL_FROM": "rolegate"}, wantErr: "ROLEGATE_MAIL_FROM: "},
		{name: "two senders", env: map[string]string{"ROLEGATE_MAIL_FROM": "a@example.com, b@example.com"}, wantErr: "ROLEGATE_MAIL_FROM: "},
		{name: "a header in from", env: map[string]string{"ROLEGATE_MAIL_FROM": "a@example.com\r\nBcc: b@example.com"}, wantErr: "ROLEGATE_MAIL_FROM: must be one line"},
		{name: "another scheme", env: map[string]string{"ROLEGATE_SMTP_URL": "https://user:" + password + "@smtp.example.com"}, wantErr: "ROLEGATE_SMTP_URL: the scheme must be"},
		{name: "a bad port", env: map[string]string{"ROLEGATE_SMTP_URL": "smtp://user:" + password + "@smtp.example.com:smtp"}, wantErr: "ROLEGATE_SMTP_URL: not a URL"},
		{name: "a bad starttls", env: map[string]string{"ROLEGATE_SMTP_URL": "smtp://user:" + password + "@smtp.example.com?starttls=" + password}, wantErr: "ROLEGATE_SMTP_URL: starttls must be"},
		{name: "a user alone", env: map[string]string{"ROLEGATE_SMTP_URL": "smtp://" + password + "@smtp.example.com"}, wantErr: "ROLEGATE_SMTP_URL: credentials need both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SMTP.String() != tt.wantSMTP || c.MailFrom != tt.wantFrom {
				t.Errorf("SMTP %q, from %q; want %q, %q", c.SMTP.String(), c.MailFrom, tt.wantSMTP, tt.wantFrom)
			}
			if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, password) {
				t.Error("the configuration, printed, shows the SMTP password")
			}
		})
	}
}
