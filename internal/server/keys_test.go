package server_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/config"
	"github.com/rolegate/rolegate/internal/keys"
	"github.com/rolegate/rolegate/internal/server"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/token"
)

func kidsOf(keys []token.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

// The stack signs id tokens with keys of their own (RS256 by default),
// made at the start beside the access tokens' (none with HS256); neither
// kind of token passes for the other, and SyncKeys follows both key sets.
func TestIDTokenKeys(t *testing.T) {
	t.Parallel()
	for _, signing := range []string{token.EdDSA, token.HS256} {
		t.Run(signing, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t, apitest.Options{SigningAlg: signing})
			if e.IDTokens.Alg() != token.RS256 || e.IDKeys.Purpose() != keys.ID || len(e.IDTokens.PublicKeys()) != 1 {
				t.Fatalf("id tokens: %s, purpose %s, keys %v", e.IDTokens.Alg(), e.IDKeys.Purpose(), kidsOf(e.IDTokens.PublicKeys()))
			}
			if (e.Keys == nil) != (signing == token.HS256) {
				t.Fatalf("access key store %v with %s", e.Keys, signing)
			}
			accessKids := kidsOf(e.Tokens.PublicKeys())
			for _, kid := range kidsOf(e.IDTokens.PublicKeys()) {
				if slices.Contains(accessKids, kid) {
					t.Errorf("key %s signs both kinds of token", kid)
				}
			}

			u := e.CreateUser(t, "idkeys-"+strings.ToLower(signing)+"@example.com", "user")
			idToken, err := e.IDTokens.Issue(token.IDClaims{Subject: "1", Audience: "app", AuthTime: time.Now(), SessionID: "s"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Tokens.Verify(idToken); err == nil {
				t.Error("an id token verified as an access token")
			}
			if _, err := e.IDTokens.ParseHint(e.Token(t, u)); err == nil {
				t.Error("an access token passed for an id_token_hint")
			}

			// A rotation of the id keys, by another replica say, reaches
			// the signer at the next sync; the access keys stay as they were.
			if _, _, err := e.IDKeys.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := e.SyncKeys(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := len(e.IDTokens.PublicKeys()); n != 2 {
				t.Errorf("after the rotation the id tokens verify with %d keys, want 2", n)
			}
			if got := kidsOf(e.Tokens.PublicKeys()); !slices.Equal(got, accessKids) {
				t.Errorf("after the id keys' rotation the access keys are %v, want %v", got, accessKids)
			}
			if _, err := e.IDTokens.ParseHint(idToken); err != nil {
				t.Errorf("the id token of the key before: %v", err)
			}
		})
	}
}

// With HS256 access tokens and no master key, the id keys are sealed with
// a key derived from the JWT secret: replicas that share the secret share
// the keys, and another secret cannot open them.
func TestIDKeysSealedWithTheJWTSecret(t *testing.T) {
	t.Parallel()
	pool := testdb.Open(t, testdb.URL(t))
	trail := &audit.Log{Pool: pool, Logger: slog.New(slog.DiscardHandler)}
	hs256 := func(secret, master string) config.Config {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"ROLEGATE_JWT_SECRET": secret, "ROLEGATE_MASTER_KEY": master}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	secret := strings.Repeat("j", 32)
	sync := func(cfg config.Config) (string, error) {
		store, err := server.IDKeyStore(pool, cfg, nil, trail)
		if err != nil {
			return "", err
		}
		ks, _, err := store.Sync(t.Context())
		return ks.Signing.ID, err
	}
	first, err := sync(hs256(secret, ""))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := sync(hs256(secret, "")); err != nil || again != first {
		t.Errorf("a replica of the same secret: %s, %v; want %s", again, err, first)
	}
	for name, cfg := range map[string]config.Config{
		"another JWT secret":       hs256(strings.Repeat("o", 32), ""),
		"a master key":             hs256(secret, strings.Repeat("m", 32)),
		"the secret as master key": hs256(strings.Repeat("x", 32), secret),
	} {
		if _, err := sync(cfg); err == nil {
			t.Errorf("%s opened the id keys", name)
		}
	}
	// EdDSA access tokens have a master key, or none at all: no secret
	// stands in for it.
	eddsa, err := config.Load(func(k string) string {
		return map[string]string{"ROLEGATE_SIGNING_ALG": "EdDSA", "ROLEGATE_JWT_SECRET": secret}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.IDKeyStore(pool, eddsa, nil, trail); err == nil {
		t.Error("an id key store with EdDSA access tokens and no master key")
	}
}
