package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rolegate/rolegate/token"
)

// The fuzz targets verify at one instant, with keys that do not change from
// run to run, so that the tokens in testdata/fuzz stay valid and keep
// leading the fuzzer past the signature check.
var (
	fuzzNow    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	fuzzSecret = []byte("fuzz-secret-fuzz-secret-fuzz-sec") // 32 bytes
	fuzzEdKey  = func() token.Key {
		priv := ed25519.NewKeyFromSeed([]byte("rolegate fuzz ed25519 seed 32 by"))
		return token.Key{ID: "fuzz-ed", Alg: token.EdDSA, Private: priv, Public: priv.Public()}
	}()
)

const (
	fuzzIssuer   = "https://rolegate.example"
	fuzzAudience = "rolegate-api"
	fuzzLeeway   = 5 * time.Second
)

// fuzzManagers returns a Manager signing with the HS256 secret and one
// signing with the Ed25519 key (and verifying with a fresh ES256 key too),
// both with their caches, at fuzzNow.
func fuzzManagers(tb testing.TB) (hs, keys *token.Manager) {
	tb.Helper()
	es, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := token.Config{Issuer: fuzzIssuer, Audience: fuzzAudience, TTL: time.Hour, Leeway: fuzzLeeway, Now: func() time.Time { return fuzzNow }}
	hsCfg, keysCfg := cfg, cfg
	hsCfg.Secret = fuzzSecret
	keysCfg.Keys = &token.KeySet{Signing: fuzzEdKey, Verify: []token.Key{fuzzEdKey, es}}
	if hs, err = token.New(hsCfg); err != nil {
		tb.Fatal(err)
	}
	if keys, err = token.New(keysCfg); err != nil {
		tb.Fatal(err)
	}
	return hs, keys
}

// fuzzSubjects are whom the seed tokens are issued to.
var fuzzSubjects = []token.Subject{
	{UserID: 1, Email: "alice@example.com", Roles: []string{"user"}, SessionID: "00000000-0000-4000-8000-000000000001", Version: 3},
	{UserID: 9223372036854775807, Email: "", Roles: nil},
	{ClientID: "c_0123456789abcdef", Roles: []string{"system"}},
}

// verifyOK checks what must hold of a token m verified: the claims say who
// it is for (a user id or a client, never both), and it is within its
// lifetime; verifying it again gives the same claims.
func verifyOK(t *testing.T, m *token.Manager, raw string, c *token.Claims) {
	t.Helper()
	switch {
	case c == nil:
		t.Fatalf("Verify(%q) = nil claims, no error", raw)
	case (c.UserID > 0) == (c.ClientID != ""), c.UserID < 0:
		t.Fatalf("Verify(%q): user id %d and client id %q; want exactly one", raw, c.UserID, c.ClientID)
	case c.ClientID != "" && c.Email != "":
		t.Fatalf("Verify(%q): a client's token with email %q", raw, c.Email)
	case c.Roles == nil:
		t.Fatalf("Verify(%q): nil roles", raw)
	case c.ID == "":
		t.Fatalf("Verify(%q): no jti", raw)
	case !c.ExpiresAt.After(fuzzNow.Add(-fuzzLeeway)):
		t.Fatalf("Verify(%q): expired at %v, now %v", raw, c.ExpiresAt, fuzzNow)
	case c.IssuedAt.After(fuzzNow.Add(fuzzLeeway)):
		t.Fatalf("Verify(%q): issued in the future, at %v", raw, c.IssuedAt)
	}
	again, err := m.Verify(raw)
	if err != nil || again.UserID != c.UserID || again.ClientID != c.ClientID || again.ID != c.ID {
		t.Fatalf("Verify(%q) again = %+v, %v; first %+v", raw, again, err, c)
	}
}

// verifyRefused checks that err, the error of a failed Verify, is ErrInvalid.
func verifyRefused(t *testing.T, raw string, c *token.Claims, err error) {
	t.Helper()
	if !errors.Is(err, token.ErrInvalid) || c != nil {
		t.Fatalf("Verify(%q) = %+v, %v; a refusal must be nil and wrap ErrInvalid", raw, c, err)
	}
}

// FuzzVerify feeds arbitrary strings to Verify of an HS256 Manager and of
// an EdDSA one. Neither may panic; every refusal wraps ErrInvalid; a token
// that verifies names a user or a client and is within its lifetime; and no
// string verifies under both (the algorithm is pinned to the key). Run:
// make fuzz.
func FuzzVerify(f *testing.F) {
	hs, keys := fuzzManagers(f)
	for _, m := range []*token.Manager{hs, keys} {
		for _, s := range fuzzSubjects {
			raw, _, err := m.Issue(s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
			head, rest, _ := strings.Cut(raw, ".")
			payload, sig, _ := strings.Cut(rest, ".")
			f.Add(head + "." + payload + ".")                                 // no signature
			f.Add(head + "." + payload)                                       // two parts
			f.Add(raw + "=")                                                  // padding
			f.Add(raw[:len(raw)-1])                                           // truncated signature
			f.Add(b64(`{"alg":"none","typ":"at+jwt"}`) + "." + payload + ".") // alg none
			f.Add(b64(`{"alg":"HS256","typ":"at+jwt","kid":"fuzz-ed"}`) + "." + payload + "." + sig)
			f.Add(head + "." + payload + "." + sig + "." + sig)
		}
	}
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "Bearer x", "\x00", strings.Repeat("a", 8<<10+1), "eyJ.eyJ.", "e30.e30.e30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var ok int
		for _, m := range []*token.Manager{hs, keys} {
			c, err := m.Verify(raw)
			if err != nil {
				verifyRefused(t, raw, c, err)
				continue
			}
			verifyOK(t, m, raw, c)
			ok++
		}
		if ok > 1 {
			t.Fatalf("Verify(%q) succeeded under both HS256 and EdDSA", raw)
		}
	})
}

// FuzzVerifySigned builds tokens from an arbitrary header and payload
// (JSON, or anything), correctly signed with both the HS256 secret and the
// Ed25519 key, so that the fuzzer works on what comes after the signature
// check: the JOSE header, the claims and their types. The properties are
// FuzzVerify's, and a token verifies only under the key it was signed
// with. Run: make fuzz.
func FuzzVerifySigned(f *testing.F) {
	hs, keys := fuzzManagers(f)
	now := fuzzNow.Unix()
	num := func(d time.Duration) string { return strconv.FormatInt(now+int64(d/time.Second), 10) }
	good := `{"iss":"` + fuzzIssuer + `","sub":"1","aud":["` + fuzzAudience + `"],"exp":` + num(time.Hour) + `,"nbf":` + num(0) + `,"iat":` + num(0) + `,"jti":"j","email":"a@example.com","roles":["user"],"sid":"s","ver":1}`
	client := `{"iss":"` + fuzzIssuer + `","sub":"c1","client_id":"c1","aud":"` + fuzzAudience + `","exp":` + num(time.Hour) + `,"nbf":` + num(0) + `,"iat":` + num(0) + `,"jti":"j","roles":[]}`
	headers := []string{
		`{"alg":"HS256","typ":"at+jwt"}`,
		`{"alg":"EdDSA","typ":"at+jwt","kid":"fuzz-ed"}`,
		`{"alg":"EdDSA","typ":"application/at+jwt","kid":"fuzz-ed"}`,
		`{"alg":"ES256","typ":"at+jwt","kid":"fuzz-ed"}`,
		`{"alg":"EdDSA","typ":"JWT","kid":"fuzz-ed"}`,
		`{"alg":"EdDSA","kid":"nope"}`,
		`{"alg":"none"}`,
		`{"alg":"HS256","typ":"at+jwt","crit":["exp"]}`,
		`[]`, `null`, `{`, ``,
	}
	payloads := []string{
		good, client,
		strings.Replace(good, `"sub":"1"`, `"sub":"01"`, 1),
		strings.Replace(good, `"sub":"1"`, `"sub":"-1"`, 1),
		strings.Replace(good, `"sub":"1"`, `"sub":"9223372036854775808"`, 1),
		strings.Replace(good, `"sub":"1"`, `"sub":1`, 1),
		strings.Replace(good, `"roles":["user"]`, `"roles":null`, 1),
		strings.Replace(good, `"roles":["user"]`, `"roles":"user"`, 1),
		strings.Replace(good, `"exp":`+num(time.Hour), `"exp":"`+num(time.Hour)+`"`, 1),
		strings.Replace(good, `"exp":`+num(time.Hour), `"exp":1e309`, 1),
		strings.Replace(good, `"exp":`+num(time.Hour), `"exp":-1e308`, 1),
		strings.Replace(good, `"exp":`+num(time.Hour), `"exp":9223372036854775807`, 1),
		strings.Replace(good, `"iat":`+num(0), `"iat":`+num(time.Hour), 1),
		strings.Replace(good, `"nbf":`+num(0), `"nbf":-9223372036854775808`, 1),
		strings.Replace(good, `"ver":1`, `"ver":1.5`, 1),
		strings.Replace(client, `"sub":"c1"`, `"sub":"c2"`, 1),
		strings.Replace(client, `"roles":[]`, `"roles":[],"email":"a@b"`, 1),
		good[:len(good)-1] + `,"sub":"2"}`,
		`{}`, `null`, `[]`, `"x"`, `{"exp":1e999}`, "\xff",
	}
	// The seeds must reach the end of verification, or the fuzzer starts
	// from nothing past the signature.
	for i, h := range headers[:2] {
		for _, p := range []string{good, client} {
			raw := sign(h, p)[i]
			if _, err := []*token.Manager{hs, keys}[i].Verify(raw); err != nil {
				f.Fatalf("seed %s.%s does not verify: %v", h, p, err)
			}
		}
	}
	for _, h := range headers[:2] {
		for _, p := range payloads {
			f.Add(h, p)
		}
	}
	for _, h := range headers[2:] {
		f.Add(h, good)
	}
	f.Fuzz(func(t *testing.T, header, payload string) {
		signed := sign(header, payload)
		hsRaw, edRaw := signed[0], signed[1]
		for _, tc := range []struct {
			m       *token.Manager
			raw     string
			mayPass bool
		}{
			{hs, hsRaw, true},
			{keys, edRaw, true},
			{hs, edRaw, false},
			{keys, hsRaw, false},
		} {
			c, err := tc.m.Verify(tc.raw)
			switch {
			case err != nil:
				verifyRefused(t, tc.raw, c, err)
			case !tc.mayPass:
				t.Fatalf("Verify(%q) passed under a key it was not signed with", tc.raw)
			default:
				verifyOK(t, tc.m, tc.raw, c)
			}
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sign returns header and payload as a JWT signed with the HS256 secret and
// as one signed with the Ed25519 key, whatever their header says.
func sign(header, payload string) [2]string {
	signingString := b64(header) + "." + b64(payload)
	hsSig, err := jwt.SigningMethodHS256.Sign(signingString, fuzzSecret)
	if err != nil {
		panic(err) // cannot happen: the key is a []byte
	}
	edSig, err := jwt.SigningMethodEdDSA.Sign(signingString, fuzzEdKey.Private)
	if err != nil {
		panic(err) // cannot happen: the key is an ed25519.PrivateKey
	}
	return [2]string{
		signingString + "." + base64.RawURLEncoding.EncodeToString(hsSig),
		signingString + "." + base64.RawURLEncoding.EncodeToString(edSig),
	}
}
