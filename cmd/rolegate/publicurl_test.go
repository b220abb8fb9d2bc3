package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/testdb"
)

// ROLEGATE_PUBLIC_URL is where the metadata's endpoints are and, unless
// ROLEGATE_JWT_ISSUER overrides it, the issuer of the metadata and the iss
// of tokens; unset, it is http:// and the listen address. serve refuses a
// value it could not publish (issue #18, finding 10).
func TestPublicURLAndIssuer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		env        map[string]string
		wantBase   string // "" for http:// and the listen address
		wantIssuer string // "" for wantBase
	}{
		{name: "default"},
		{name: "set", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com/"}, wantBase: "https://auth.example.com"},
		{name: "issuer kept as before", env: map[string]string{"ROLEGATE_PUBLIC_URL": "https://auth.example.com", "ROLEGATE_JWT_ISSUER": "rolegate"}, wantBase: "https://auth.example.com", wantIssuer: "rolegate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"DATABASE_URL": testdb.URL(t), "ROLEGATE_JWT_SECRET": strings.Repeat("p", 32), "ROLEGATE_ADMIN_PASSWORD": "first admin password"}
			for k, v := range tt.env {
				vars[k] = v
			}
			addr, logs := startRun(t, vars)
			base := tt.wantBase
			if base == "" {
				base = "http://" + addr
			}
			issuer := tt.wantIssuer
			if issuer == "" {
				issuer = base
			}
			// The default gives each replica its own issuer: serve says so.
			warned := strings.Contains(logs.String(), "replicas on one DATABASE_URL must share one ROLEGATE_PUBLIC_URL")
			if want := tt.wantBase == ""; warned != want {
				t.Errorf("warned about replicas' issuers: %v, want %v", warned, want)
			}

			code, body := get(t, addr, "/.well-known/oauth-authorization-server", "")
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil || code != 200 {
				t.Fatalf("metadata = %d %s", code, body)
			}
			for k, want := range map[string]string{"issuer": issuer, "token_endpoint": base + "/token", "jwks_uri": base + "/.well-known/jwks.json", "revocation_endpoint": base + "/token/revoke"} {
				if m[k] != want {
					t.Errorf("%s = %v, want %s", k, m[k], want)
				}
			}

			tok := loginOK(t, addr, "admin@localhost", "first admin password")
			parts := strings.Split(tok, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			var claims struct{ Iss string }
			if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Iss != issuer {
				t.Errorf("token iss = %q (%v), want %q, the metadata's issuer", claims.Iss, err, issuer)
			}
		})
	}

	for _, bad := range []string{"auth.example.com", "https://auth.example.com/?x=1", "https://auth.example.com/#top", "ftp://auth.example.com"} {
		_, err := runCmd(t, map[string]string{"ROLEGATE_PUBLIC_URL": bad, "ROLEGATE_JWT_SECRET": strings.Repeat("p", 32)}, "", "serve")
		if err == nil || !strings.Contains(err.Error(), "ROLEGATE_PUBLIC_URL: ") {
			t.Errorf("serve with ROLEGATE_PUBLIC_URL=%s: %v, want it refused", bad, err)
		}
	}
}
