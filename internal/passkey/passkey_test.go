package passkey_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// t0 is the test clock's start.
var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// The relying party of the tests: a public URL with a path, whose origin
// and host are what the browser reports.
const (
	publicURL = "https://auth.example.com/base"
	origin    = "https://auth.example.com"
	rpID      = "auth.example.com"
)

// clock is a test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a database, a clock at t0 and a Service on them.
type fixture struct {
	pool  *pgxpool.Pool
	q     *db.Queries
	clock *clock
	s     *passkey.Service
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	pool := testdb.New(tb)
	c := &clock{t: t0}
	s, err := passkey.New(passkey.Config{PublicURL: publicURL, Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{pool: pool, q: db.New(pool), clock: c, s: s}
}

func (f *fixture) newUser(tb testing.TB, email string) passkey.User {
	tb.Helper()
	var id int64
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO users (email, canonical_email, password_hash) VALUES ($1, $1, 'x') RETURNING id`, email).Scan(&id); err != nil {
		tb.Fatal(err)
	}
	return passkey.User{ID: id, Email: email, DisplayName: strings.ToUpper(email[:1]) + email[1:strings.IndexByte(email, '@')]}
}

// register registers a's credential for user as name.
func (f *fixture) register(tb testing.TB, user passkey.User, a *authenticator, name string) passkey.Credential {
	tb.Helper()
	ctx := context.Background()
	cer, opts, err := f.s.BeginRegistration(ctx, f.q, user)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := f.s.FinishRegistration(ctx, f.q, user.ID, cer, a.create(tb, opts), name)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// login signs user in with a as a second factor.
func (f *fixture) login(tb testing.TB, user int64, a *authenticator) (passkey.Credential, error) {
	tb.Helper()
	ctx := context.Background()
	cer, opts, err := f.s.BeginLogin(ctx, f.q, user)
	if err != nil {
		tb.Fatal(err)
	}
	return f.s.FinishLogin(ctx, f.q, user, cer, a.get(tb, opts))
}

// signCount returns the signature counter stored for a's credential.
func (f *fixture) signCount(tb testing.TB, a *authenticator) int64 {
	tb.Helper()
	var n int64
	if err := f.pool.QueryRow(context.Background(), `SELECT sign_count FROM passkeys WHERE credential_id = $1`, a.id).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// The authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagBE = 0x08 // backup eligible
	flagBS = 0x10 // backed up
	flagAT = 0x40 // attested credential data included
)

var b64 = base64.RawURLEncoding

// ctap2 encodes CBOR as authenticators do (CTAP2 canonical CBOR).
var ctap2 = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// authenticator is a software authenticator with one ES256 (ECDSA P-256)
// credential, as a browser reports it: the JSON of navigator.credentials
// create() and get() results, each field in base64url.
type authenticator struct {
	key    *ecdsa.PrivateKey
	id     []byte   // the credential id
	handle []byte   // the user handle it keeps, from the creation options
	aaguid [16]byte // the model it claims; zero for none
	count  uint32   // the signature counter, raised by step before each signature
	step   uint32
	flags  byte // UP, UV, BE, BS as it reports them

	// What the browser reports; origin and rpID by default. clientData,
	// when set, changes the client data before it is hashed and signed.
	origin, rpID string
	clientData   func(map[string]any)
}

func newAuthenticator(tb testing.TB) *authenticator {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &authenticator{key: key, id: id, step: 1, flags: flagUP | flagUV, origin: origin, rpID: rpID}
}

// options is what the authenticator reads of a ceremony's options.
type options struct {
	Challenge string `json:"challenge"`
	Timeout   int    `json:"timeout"`
	RPID      string `json:"rpId"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	AuthenticatorSelection struct {
		ResidentKey        string `json:"residentKey"`
		RequireResidentKey bool   `json:"requireResidentKey"`
		UserVerification   string `json:"userVerification"`
	} `json:"authenticatorSelection"`
	Attestation        string       `json:"attestation"`
	UserVerification   string       `json:"userVerification"`
	ExcludeCredentials []descriptor `json:"excludeCredentials"`
	AllowCredentials   []descriptor `json:"allowCredentials"`
	PubKeyCredParams   []struct {
		Type string `json:"type"`
		Alg  int    `json:"alg"`
	} `json:"pubKeyCredParams"`
}

type descriptor struct {
	Type       string   `json:"type"`
	ID         string   `json:"id"`
	Transports []string `json:"transports"`
}

func parseOptions(tb testing.TB, raw json.RawMessage) options {
	tb.Helper()
	var o options
	if err := json.Unmarshal(raw, &o); err != nil {
		tb.Fatalf("options %s: %v", raw, err)
	}
	return o
}

func (a *authenticator) clientDataJSON(tb testing.TB, typ, challenge string) []byte {
	tb.Helper()
	cd := map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false}
	if a.clientData != nil {
		a.clientData(cd)
	}
	b, err := json.Marshal(cd)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// create answers creation options as navigator.credentials.create() does,
// with "none" attestation: it keeps the user handle and returns the
// PublicKeyCredential's JSON.
func (a *authenticator) create(tb testing.TB, raw json.RawMessage) []byte {
	tb.Helper()
	o := parseOptions(tb, raw)
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		tb.Fatalf("user.id %q: %v", o.User.ID, err)
	}
	a.handle = handle
	pub, err := a.key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		tb.Fatal(err)
	}
	// A COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
	coseKey, err := ctap2.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:]})
	if err != nil {
		tb.Fatal(err)
	}
	authData := a.authData(flagAT)
	authData = append(authData, a.aaguid[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(a.id)))
	authData = append(authData, a.id...)
	authData = append(authData, coseKey...)
	att, err := ctap2.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		tb.Fatal(err)
	}
	return a.credential(tb, map[string]any{
		"clientDataJSON":    b64.EncodeToString(a.clientDataJSON(tb, "webauthn.create", o.Challenge)),
		"attestationObject": b64.EncodeToString(att),
		"transports":        []string{"internal", "hybrid", "internal", "carrier-pigeon"},
	}, map[string]any{"credProps": map[string]any{"rk": true}})
}

// get answers request options as navigator.credentials.get() does: an
// assertion signed with the key, its counter raised by step.
func (a *authenticator) get(tb testing.TB, raw json.RawMessage) []byte {
	tb.Helper()
	o := parseOptions(tb, raw)
	a.count += a.step
	authData := a.authData(0)
	cd := a.clientDataJSON(tb, "webauthn.get", o.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(bytes.Clone(authData), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		tb.Fatal(err)
	}
	resp := map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(authData),
		"signature":         b64.EncodeToString(sig),
	}
	if a.handle != nil {
		resp["userHandle"] = b64.EncodeToString(a.handle)
	}
	return a.credential(tb, resp, map[string]any{})
}

// authData returns the authenticator data's head: the RP id hash, the
// flags with extra, and the counter.
func (a *authenticator) authData(extra byte) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	d := append(h[:], a.flags|extra)
	return binary.BigEndian.AppendUint32(d, a.count)
}

// credential returns the JSON of a PublicKeyCredential with response, as
// its toJSON() gives it.
func (a *authenticator) credential(tb testing.TB, response, extensions map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.id), "rawId": b64.EncodeToString(a.id), "type": "public-key",
		"authenticatorAttachment": "platform", "response": response, "clientExtensionResults": extensions,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestNew(t *testing.T) {
	tests := []struct {
		url          string
		rpID, origin string // "" when refused
	}{
		{"https://auth.example.com", "auth.example.com", "https://auth.example.com"},
		{"https://Auth.Example.COM:443/base/", "auth.example.com", "https://auth.example.com"},
		{"https://auth.example.com:8443/base", "auth.example.com", "https://auth.example.com:8443"},
		{"http://localhost:8080", "localhost", "http://localhost:8080"},
		{"http://rolegate.localhost", "rolegate.localhost", "http://rolegate.localhost"},
		{"http://127.0.0.1:8080", "", ""},
		{"http://[::1]:8080", "", ""},
		{"https://192.0.2.1", "", ""},
		{"http://auth.example.com", "", ""},
		{"ftp://auth.example.com", "", ""},
		{"auth.example.com", "", ""},
		{"https://", "", ""},
		{"", "", ""},
		{"https://bücher.example", "", ""},
	}
	for _, tt := range tests {
		s, err := passkey.New(passkey.Config{PublicURL: tt.url})
		switch {
		case tt.rpID == "" && !errors.Is(err, passkey.ErrPublicURL):
			t.Errorf("New(%q): %v, want ErrPublicURL", tt.url, err)
		case tt.rpID == "":
		case err != nil:
			t.Errorf("New(%q): %v", tt.url, err)
		case s.RPID() != tt.rpID || s.Origin() != tt.origin:
			t.Errorf("New(%q): RP id %q, origin %q; want %q, %q", tt.url, s.RPID(), s.Origin(), tt.rpID, tt.origin)
		}
	}
}

// A passkey registered, then used as a second factor.
func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")

	if has, err := f.s.Has(ctx, f.q, alice.ID); err != nil || has {
		t.Errorf("Has before registering = %v, %v; want false", has, err)
	}
	if _, _, err := f.s.BeginLogin(ctx, f.q, alice.ID); !errors.Is(err, passkey.ErrNoPasskeys) {
		t.Errorf("BeginLogin without a passkey: %v, want ErrNoPasskeys", err)
	}

	cer, raw, err := f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	o := parseOptions(t, raw)
	handle, _ := b64.DecodeString(o.User.ID)
	if len(handle) != 32 {
		t.Errorf("user.id is %d bytes, want 32", len(handle))
	}
	got := []any{o.RP.ID, o.RP.Name, o.User.Name, o.User.DisplayName, o.AuthenticatorSelection.ResidentKey,
		o.AuthenticatorSelection.RequireResidentKey, o.AuthenticatorSelection.UserVerification, o.Attestation,
		o.Timeout, len(o.ExcludeCredentials)}
	want := []any{rpID, "rolegate", "alice@example.com", "Alice", "required", true, "preferred", "none", 300000, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("creation options %s (-want +got):\n%s", raw, diff)
	}
	if c, err := b64.DecodeString(o.Challenge); err != nil || len(c) < 16 {
		t.Errorf("challenge %q: %d bytes, %v", o.Challenge, len(c), err)
	}
	if len(o.PubKeyCredParams) == 0 || o.PubKeyCredParams[0].Alg != -7 {
		t.Errorf("pubKeyCredParams = %+v, want ES256 (-7) first", o.PubKeyCredParams)
	}

	a := newAuthenticator(t)
	a.count = 7
	a.aaguid = [16]byte{0xea, 0x9b, 0x8d, 0x66, 0x4d, 0x01, 0x1d, 0x21, 0x3c, 0xe4, 0xb6, 0xb4, 0x8c, 0xb5, 0x75, 0xd4}
	reg, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer, a.create(t, raw), "  Work laptop ")
	if err != nil {
		t.Fatal(err)
	}
	wantCred := passkey.Credential{
		ID: reg.ID, Name: "Work laptop", AAGUID: "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", Transports: []string{"internal", "hybrid"},
		CreatedAt: t0, UserVerified: true,
	}
	if diff := cmp.Diff(wantCred, reg); diff != "" {
		t.Errorf("FinishRegistration (-want +got):\n%s", diff)
	}
	if has, err := f.s.Has(ctx, f.q, alice.ID); err != nil || !has {
		t.Errorf("Has once registered = %v, %v; want true", has, err)
	}

	// The handle stays the account's.
	_, again, err := f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	if o2 := parseOptions(t, again); o2.User.ID != o.User.ID {
		t.Errorf("user.id changed from %s to %s", o.User.ID, o2.User.ID)
	}

	f.clock.Add(time.Hour)
	cer, raw, err = f.s.BeginLogin(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	o = parseOptions(t, raw)
	wantOpts := []any{rpID, "preferred", 300000, []descriptor{{Type: "public-key", ID: b64.EncodeToString(a.id), Transports: []string{"internal", "hybrid"}}}}
	if diff := cmp.Diff(wantOpts, []any{o.RPID, o.UserVerification, o.Timeout, o.AllowCredentials}); diff != "" {
		t.Errorf("request options %s (-want +got):\n%s", raw, diff)
	}
	used, err := f.s.FinishLogin(ctx, f.q, alice.ID, cer, a.get(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	wantCred.LastUsedAt = t0.Add(time.Hour)
	if diff := cmp.Diff(wantCred, used); diff != "" {
		t.Errorf("FinishLogin (-want +got):\n%s", diff)
	}
	if n := f.signCount(t, a); n != 8 {
		t.Errorf("sign_count = %d, want the assertion's 8", n)
	}
	if diff := cmp.Diff([]string{"hwk", "user"}, passkey.AMR(used)); diff != "" {
		t.Errorf("AMR (-want +got):\n%s", diff)
	}

	// Without user verification, the assertion passes (it is preferred,
	// not required) and says so.
	a.flags = flagUP
	used, err = f.login(t, alice.ID, a)
	if err != nil || used.UserVerified {
		t.Errorf("an assertion without UV: %+v, %v; want it accepted, UserVerified false", used, err)
	}
}

// A passwordless sign-in finds the account by the passkey's user handle.
func TestPasswordless(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.newUser(t, "alice@example.com"), f.newUser(t, "bob@example.com")
	a, b := newAuthenticator(t), newAuthenticator(t)
	a.flags |= flagBE | flagBS // a synced passkey
	aCred := f.register(t, alice, a, "Phone")
	f.register(t, bob, b, "Key")

	stranger := newAuthenticator(t) // a's key under bob's handle
	stranger.key, stranger.id, stranger.flags = a.key, a.id, a.flags
	stranger.handle = b.handle
	unknown := newAuthenticator(t)
	unknown.key, unknown.id, unknown.flags = a.key, a.id, a.flags
	unknown.handle = bytes.Repeat([]byte{1}, 32)
	anonymous := newAuthenticator(t)
	anonymous.key, anonymous.id, anonymous.flags = a.key, a.id, a.flags

	tests := []struct {
		name string
		a    *authenticator
		want int64 // 0 when refused
	}{
		{"alice's passkey", a, alice.ID},
		{"bob's passkey", b, bob.ID},
		{"alice's key under bob's user handle", stranger, 0},
		{"alice's key under an unknown user handle", unknown, 0},
		{"alice's key without a user handle", anonymous, 0},
	}
	for _, tt := range tests {
		f.clock.Add(time.Minute)
		cer, raw, err := f.s.BeginPasswordless(ctx, f.q)
		if err != nil {
			t.Fatal(err)
		}
		if o := parseOptions(t, raw); o.RPID != rpID || len(o.AllowCredentials) != 0 || o.UserVerification != "preferred" {
			t.Errorf("passwordless options %s: want rpId %s, no allowCredentials, userVerification preferred", raw, rpID)
		}
		user, c, err := f.s.FinishPasswordless(ctx, f.q, cer, tt.a.get(t, raw))
		switch {
		case tt.want == 0 && !errors.Is(err, passkey.ErrInvalid):
			t.Errorf("%s: user %d, %v; want ErrInvalid", tt.name, user, err)
		case tt.want != 0 && (err != nil || user != tt.want):
			t.Errorf("%s: user %d, %v; want %d", tt.name, user, err, tt.want)
		}
		if tt.a == a && err == nil {
			want := aCred
			want.LastUsedAt, want.UserVerified = f.clock.Now(), true
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("%s: credential (-want +got):\n%s", tt.name, diff)
			}
			if diff := cmp.Diff([]string{"swk", "user"}, passkey.AMR(c)); diff != "" {
				t.Errorf("AMR of a synced passkey (-want +got):\n%s", diff)
			}
		}
	}
}

// A ceremony is finished once, before it expires, by its own account and
// as what it was begun for.
func TestCeremonyRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.newUser(t, "alice@example.com"), f.newUser(t, "bob@example.com")
	a, b := newAuthenticator(t), newAuthenticator(t)
	f.register(t, alice, a, "")
	f.register(t, bob, b, "")

	beginLogin := func(user int64) func() (string, json.RawMessage) {
		return func() (string, json.RawMessage) {
			cer, raw, err := f.s.BeginLogin(ctx, f.q, user)
			if err != nil {
				t.Fatal(err)
			}
			return cer, raw
		}
	}
	beginPasswordless := func() (string, json.RawMessage) {
		cer, raw, err := f.s.BeginPasswordless(ctx, f.q)
		if err != nil {
			t.Fatal(err)
		}
		return cer, raw
	}
	beginRegistration := func() (string, json.RawMessage) {
		cer, raw, err := f.s.BeginRegistration(ctx, f.q, alice)
		if err != nil {
			t.Fatal(err)
		}
		return cer, raw
	}
	finishLogin := func(user int64, x *authenticator) func(string, json.RawMessage) error {
		return func(cer string, raw json.RawMessage) error {
			_, err := f.s.FinishLogin(ctx, f.q, user, cer, x.get(t, raw))
			return err
		}
	}
	finishPasswordless := func(cer string, raw json.RawMessage) error {
		_, _, err := f.s.FinishPasswordless(ctx, f.q, cer, a.get(t, raw))
		return err
	}
	finishRegistration := func(cer string, raw json.RawMessage) error {
		_, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer, newAuthenticator(t).create(t, raw), "")
		return err
	}

	tests := []struct {
		name   string
		begin  func() (string, json.RawMessage)
		before func(cer string, raw json.RawMessage) string // what happens between, and the handle given
		finish func(string, json.RawMessage) error
		ok     bool
	}{
		{"a second factor", beginLogin(alice.ID), nil, finishLogin(alice.ID, a), true},
		{"used twice", beginLogin(alice.ID), func(cer string, raw json.RawMessage) string {
			if err := finishLogin(alice.ID, a)(cer, raw); err != nil {
				t.Errorf("used once: %v", err)
			}
			return cer
		}, finishLogin(alice.ID, a), false},
		{"used after a refused answer", beginLogin(alice.ID), func(cer string, raw json.RawMessage) string {
			if err := finishLogin(alice.ID, b)(cer, raw); !errors.Is(err, passkey.ErrInvalid) {
				t.Errorf("another account's passkey: %v, want ErrInvalid", err)
			}
			return cer
		}, finishLogin(alice.ID, a), false},
		{"just before it expires", beginLogin(alice.ID), func(cer string, _ json.RawMessage) string {
			f.clock.Add(passkey.CeremonyTTL - time.Second)
			return cer
		}, finishLogin(alice.ID, a), true},
		{"expired", beginLogin(alice.ID), func(cer string, _ json.RawMessage) string {
			f.clock.Add(passkey.CeremonyTTL)
			return cer
		}, finishLogin(alice.ID, a), false},
		{"finished by another account, with its passkey", beginLogin(alice.ID), nil, finishLogin(bob.ID, b), false},
		{"finished by another account, with the account's passkey", beginLogin(alice.ID), nil, finishLogin(bob.ID, a), false},
		{"a second factor's, passwordless", beginLogin(alice.ID), nil, finishPasswordless, false},
		{"a passwordless one, as a second factor", beginPasswordless, nil, finishLogin(alice.ID, a), false},
		{"a registration's, as a second factor", beginRegistration, nil, finishLogin(alice.ID, a), false},
		{"a second factor's, as a registration", beginLogin(alice.ID), nil, finishRegistration, false},
		{"a registration", beginRegistration, nil, finishRegistration, true},
		{"a registration, expired", beginRegistration, func(cer string, _ json.RawMessage) string {
			f.clock.Add(passkey.CeremonyTTL)
			return cer
		}, finishRegistration, false},
		{"a handle cut short", beginLogin(alice.ID), func(cer string, _ json.RawMessage) string { return cer[:42] }, finishLogin(alice.ID, a), false},
		{"a handle changed", beginLogin(alice.ID), func(cer string, _ json.RawMessage) string { return flip(cer) }, finishLogin(alice.ID, a), false},
		{"no handle", beginLogin(alice.ID), func(string, json.RawMessage) string { return "" }, finishLogin(alice.ID, a), false},
	}
	for _, tt := range tests {
		f.clock.Add(time.Hour)
		cer, raw := tt.begin()
		if tt.before != nil {
			cer = tt.before(cer, raw)
		}
		err := tt.finish(cer, raw)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want it accepted", tt.name, err)
		case !tt.ok && !errors.Is(err, passkey.ErrInvalid):
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}

	// Refused as another account's, the ceremony is still its own's.
	cer, raw := beginLogin(alice.ID)()
	if err := finishLogin(bob.ID, b)(cer, raw); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("finished by another account: %v, want ErrInvalid", err)
	}
	if err := finishLogin(alice.ID, a)(cer, raw); err != nil {
		t.Errorf("then by its own: %v", err)
	}
}

// An answer that is not the authenticator's, for this ceremony, at this
// origin and relying party, is refused; so is one too large to read.
func TestAnswerRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.newUser(t, "alice@example.com"), f.newUser(t, "bob@example.com")
	a := newAuthenticator(t)
	f.register(t, alice, a, "")
	bobs := newAuthenticator(t)
	f.register(t, bob, bobs, "")

	// Each case changes the authenticator (a copy of a, or of a new one
	// for a registration) or its answer.
	tests := []struct {
		name      string
		change    func(x *authenticator)
		answer    func(resp []byte) []byte
		loginOnly bool // a refusal only of an assertion
	}{
		{"as given", nil, nil, false},
		{"another origin", func(x *authenticator) { x.origin = "https://evil.example.com" }, nil, false},
		{"another port", func(x *authenticator) { x.origin = "https://auth.example.com:8443" }, nil, false},
		{"http", func(x *authenticator) { x.origin = "http://auth.example.com" }, nil, false},
		{"another relying party", func(x *authenticator) { x.rpID = "evil.example.com" }, nil, false},
		{"the parent domain as relying party", func(x *authenticator) { x.rpID = "example.com" }, nil, false},
		{"another challenge", func(x *authenticator) {
			x.clientData = func(cd map[string]any) { cd["challenge"] = b64.EncodeToString(make([]byte, 32)) }
		}, nil, false},
		{"the other ceremony type", func(x *authenticator) {
			x.clientData = func(cd map[string]any) {
				cd["type"] = map[string]string{"webauthn.get": "webauthn.create", "webauthn.create": "webauthn.get"}[cd["type"].(string)]
			}
		}, nil, false},
		{"cross-origin", func(x *authenticator) { x.clientData = func(cd map[string]any) { cd["crossOrigin"] = true } }, nil, false},
		{"no user presence", func(x *authenticator) { x.flags = flagUV }, nil, false},
		{"backup state without eligibility", func(x *authenticator) { x.flags |= flagBS }, nil, false},
		{"another key", func(x *authenticator) { x.key = newAuthenticator(t).key }, nil, true},
		{"backup eligibility changed", func(x *authenticator) { x.flags |= flagBE }, nil, true},
		{"an extension output not asked for", nil, func(resp []byte) []byte {
			var m map[string]any
			_ = json.Unmarshal(resp, &m)
			m["clientExtensionResults"] = map[string]any{"hmacCreateSecret": true}
			b, _ := json.Marshal(m)
			return b
		}, false},
		{"too large", nil, func(resp []byte) []byte {
			return append(resp[:len(resp)-1], []byte(`,"pad":"`+strings.Repeat("x", passkey.MaxResponseSize)+`"}`)...)
		}, false},
		{"not JSON", nil, func([]byte) []byte { return []byte("{") }, false},
		{"empty", nil, func([]byte) []byte { return nil }, false},
		{"trailing data", nil, func(resp []byte) []byte { return append(resp, []byte(" {}")...) }, false},
		{"id not rawId", nil, func(resp []byte) []byte {
			var m map[string]any
			_ = json.Unmarshal(resp, &m)
			m["id"] = b64.EncodeToString([]byte("another credential"))
			b, _ := json.Marshal(m)
			return b
		}, false},
	}
	t.Run("login", func(t *testing.T) {
		for _, tt := range tests {
			x := *a
			if tt.change != nil {
				tt.change(&x)
			}
			cer, raw, err := f.s.BeginLogin(ctx, f.q, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp := x.get(t, raw)
			a.count = x.count
			if tt.answer != nil {
				resp = tt.answer(resp)
			}
			_, err = f.s.FinishLogin(ctx, f.q, alice.ID, cer, resp)
			switch {
			case tt.change == nil && tt.answer == nil && err != nil:
				t.Errorf("%s: %v, want it accepted", tt.name, err)
			case (tt.change != nil || tt.answer != nil) && !errors.Is(err, passkey.ErrInvalid):
				t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
			}
		}
		// Another account's passkey.
		cer, raw, err := f.s.BeginLogin(ctx, f.q, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.FinishLogin(ctx, f.q, alice.ID, cer, bobs.get(t, raw)); !errors.Is(err, passkey.ErrInvalid) {
			t.Errorf("another account's passkey: %v, want ErrInvalid", err)
		}
	})
	t.Run("registration", func(t *testing.T) {
		for _, tt := range tests {
			if tt.loginOnly {
				continue
			}
			x := newAuthenticator(t)
			if tt.change != nil {
				tt.change(x)
			}
			cer, raw, err := f.s.BeginRegistration(ctx, f.q, alice)
			if err != nil {
				t.Fatal(err)
			}
			resp := x.create(t, raw)
			if tt.answer != nil {
				resp = tt.answer(resp)
			}
			_, err = f.s.FinishRegistration(ctx, f.q, alice.ID, cer, resp, "")
			switch {
			case tt.change == nil && tt.answer == nil && err != nil:
				t.Errorf("%s: %v, want it accepted", tt.name, err)
			case (tt.change != nil || tt.answer != nil) && !errors.Is(err, passkey.ErrInvalid):
				t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
			}
		}
	})
	if cs, err := f.s.List(ctx, f.q, alice.ID); err != nil || len(cs) != 2 {
		t.Errorf("alice has %d passkeys, %v; want 2: the first and the one registered as given", len(cs), err)
	}
}

// The signature counter must go up, unless the authenticator keeps none
// (0 always): a counter that does not is a cloned authenticator's.
func TestSignCount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name  string
		start uint32 // the counter at registration
		steps []struct {
			count uint32
			ok    bool
		}
		want int64 // the counter stored at the end
	}{
		{"counting", 5, []struct {
			count uint32
			ok    bool
		}{{6, true}, {6, false}, {4, false}, {0, false}, {1000, true}, {999, false}}, 1000},
		{"no counter", 0, []struct {
			count uint32
			ok    bool
		}{{0, true}, {0, true}, {3, true}, {0, false}, {3, false}, {4, true}}, 4},
	}
	for i, tt := range tests {
		user := f.newUser(t, fmt.Sprintf("u%d@example.com", i))
		a := newAuthenticator(t)
		a.count, a.step = tt.start, 0
		f.register(t, user, a, "")
		for _, st := range tt.steps {
			f.clock.Add(time.Minute)
			a.count = st.count
			_, err := f.login(t, user.ID, a)
			switch {
			case st.ok && err != nil:
				t.Errorf("%s: counter %d: %v, want it accepted", tt.name, st.count, err)
			case !st.ok && !errors.Is(err, passkey.ErrInvalid):
				t.Errorf("%s: counter %d: %v, want ErrInvalid", tt.name, st.count, err)
			}
		}
		if n := f.signCount(t, a); n != tt.want {
			t.Errorf("%s: sign_count = %d, want %d", tt.name, n, tt.want)
		}
	}
}

// A registration excludes the account's passkeys, and a credential is
// registered once, to one account.
func TestExclusion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.newUser(t, "alice@example.com"), f.newUser(t, "bob@example.com")
	a := newAuthenticator(t)
	f.register(t, alice, a, "")

	cer, raw, err := f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	want := []descriptor{{Type: "public-key", ID: b64.EncodeToString(a.id), Transports: []string{"internal", "hybrid"}}}
	if diff := cmp.Diff(want, parseOptions(t, raw).ExcludeCredentials); diff != "" {
		t.Errorf("excludeCredentials (-want +got):\n%s", diff)
	}
	// An authenticator that ignores the exclusion.
	if _, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer, a.create(t, raw), ""); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("a registered credential again: %v, want ErrInvalid", err)
	}
	cer, raw, err = f.s.BeginRegistration(ctx, f.q, bob)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, raw); len(o.ExcludeCredentials) != 0 {
		t.Errorf("bob's registration excludes %+v, want none", o.ExcludeCredentials)
	}
	if _, err := f.s.FinishRegistration(ctx, f.q, bob.ID, cer, a.create(t, raw), ""); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("alice's credential for bob: %v, want ErrInvalid", err)
	}
	if has, err := f.s.Has(ctx, f.q, bob.ID); err != nil || has {
		t.Errorf("bob Has = %v, %v; want false", has, err)
	}
	// Another authenticator of alice's is excluded too, after.
	f.register(t, alice, newAuthenticator(t), "")
	_, raw, err = f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, raw); len(o.ExcludeCredentials) != 2 {
		t.Errorf("excludeCredentials = %+v, want alice's 2", o.ExcludeCredentials)
	}
}

func TestListAndRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.newUser(t, "alice@example.com"), f.newUser(t, "bob@example.com")
	a1, a2, b := newAuthenticator(t), newAuthenticator(t), newAuthenticator(t)
	a2.flags |= flagBE
	c1 := f.register(t, alice, a1, "Laptop")
	f.clock.Add(time.Minute)
	c2 := f.register(t, alice, a2, "Phone")
	cb := f.register(t, bob, b, "Key")
	f.clock.Add(time.Minute)
	if _, err := f.login(t, alice.ID, a2); err != nil {
		t.Fatal(err)
	}

	list, err := f.s.List(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	zero := "00000000-0000-0000-0000-000000000000"
	want := []passkey.Credential{
		{ID: c1.ID, Name: "Laptop", AAGUID: zero, Transports: []string{"internal", "hybrid"}, CreatedAt: t0},
		{ID: c2.ID, Name: "Phone", AAGUID: zero, Transports: []string{"internal", "hybrid"}, BackupEligible: true,
			CreatedAt: t0.Add(time.Minute), LastUsedAt: t0.Add(2 * time.Minute)},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// No key material: no field of bytes, and neither credential id nor
	// key in what it shows.
	for i := range reflect.TypeFor[passkey.Credential]().NumField() {
		if fl := reflect.TypeFor[passkey.Credential]().Field(i); fl.Type == reflect.TypeFor[[]byte]() {
			t.Errorf("Credential.%s is bytes", fl.Name)
		}
	}
	shown, _ := json.Marshal(list)
	pub, _ := a1.key.PublicKey.Bytes()
	for _, secret := range [][]byte{a1.id, a2.id, pub[1:33]} {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding} {
			if bytes.Contains(shown, []byte(enc.EncodeToString(secret)[:16])) {
				t.Errorf("List shows key material: %s", shown)
			}
		}
	}

	tests := []struct {
		name string
		user int64
		id   int64
		want bool
	}{
		{"another account's", bob.ID, c1.ID, false},
		{"the account's", alice.ID, c1.ID, true},
		{"again", alice.ID, c1.ID, false},
		{"unknown", alice.ID, cb.ID + 100, false},
	}
	for _, tt := range tests {
		if got, err := f.s.Remove(ctx, f.q, tt.user, tt.id); err != nil || got != tt.want {
			t.Errorf("Remove %s = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if list, err := f.s.List(ctx, f.q, alice.ID); err != nil || len(list) != 1 || list[0].ID != c2.ID {
		t.Errorf("List after Remove = %+v, %v; want the phone alone", list, err)
	}
	if list, err := f.s.List(ctx, f.q, bob.ID); err != nil || len(list) != 1 {
		t.Errorf("bob's List = %+v, %v; want his key", list, err)
	}
	if _, err := f.login(t, alice.ID, a1); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("a removed passkey: %v, want ErrInvalid", err)
	}

	// Removed between a ceremony's options and its answer.
	cer, raw, err := f.s.BeginLogin(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.s.Remove(ctx, f.q, alice.ID, c2.ID); err != nil || !ok {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if _, err := f.s.FinishLogin(ctx, f.q, alice.ID, cer, a2.get(t, raw)); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("a passkey removed during its ceremony: %v, want ErrInvalid", err)
	}
	if has, err := f.s.Has(ctx, f.q, alice.ID); err != nil || has {
		t.Errorf("Has with every passkey removed = %v, %v; want false", has, err)
	}
	if _, _, err := f.s.BeginLogin(ctx, f.q, alice.ID); !errors.Is(err, passkey.ErrNoPasskeys) {
		t.Errorf("BeginLogin with every passkey removed: %v, want ErrNoPasskeys", err)
	}

	// RemoveAll: bob's passkeys and his ceremonies under way, no one else's.
	carol := f.newUser(t, "carol@example.com")
	c := newAuthenticator(t)
	f.register(t, carol, c, "")
	f.register(t, bob, newAuthenticator(t), "")
	cer, raw, err = f.s.BeginLogin(ctx, f.q, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.RemoveAll(ctx, f.q, bob.ID); err != nil || n != 2 {
		t.Errorf("RemoveAll = %d, %v; want bob's 2", n, err)
	}
	if _, err := f.s.FinishLogin(ctx, f.q, bob.ID, cer, b.get(t, raw)); !errors.Is(err, passkey.ErrInvalid) {
		t.Errorf("a ceremony begun before RemoveAll: %v, want ErrInvalid", err)
	}
	if has, err := f.s.Has(ctx, f.q, bob.ID); err != nil || has {
		t.Errorf("bob Has after RemoveAll = %v, %v; want false", has, err)
	}
	if _, err := f.login(t, carol.ID, c); err != nil {
		t.Errorf("carol's passkey after bob's RemoveAll: %v", err)
	}
}

// An account's passkeys, user handle and ceremonies go with it.
func TestDeletingUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	f.register(t, alice, newAuthenticator(t), "")
	if _, _, err := f.s.BeginLogin(ctx, f.q, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, alice.ID); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM passkeys) + (SELECT count(*) FROM passkey_users) + (SELECT count(*) FROM passkey_ceremonies)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d passkey rows outlived their account", left)
	}
}

// A passkey of another relying party (the public URL's host changed) is
// listed, but is no factor and signs in nowhere.
func TestOtherRelyingParty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	f.register(t, alice, newAuthenticator(t), "")
	moved, err := passkey.New(passkey.Config{PublicURL: "https://login.example.org", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if has, err := moved.Has(ctx, f.q, alice.ID); err != nil || has {
		t.Errorf("Has on another host = %v, %v; want false", has, err)
	}
	if _, _, err := moved.BeginLogin(ctx, f.q, alice.ID); !errors.Is(err, passkey.ErrNoPasskeys) {
		t.Errorf("BeginLogin on another host: %v, want ErrNoPasskeys", err)
	}
	if list, err := moved.List(ctx, f.q, alice.ID); err != nil || len(list) != 1 {
		t.Errorf("List on another host = %+v, %v; want the passkey", list, err)
	}
	// And one made there signs in there.
	b := newAuthenticator(t)
	b.origin, b.rpID = "https://login.example.org", "login.example.org"
	cer, raw, err := moved.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, raw); len(o.ExcludeCredentials) != 0 || o.RP.ID != "login.example.org" {
		t.Errorf("options on another host %s: want rp.id login.example.org and no exclusions", raw)
	}
	if _, err := moved.FinishRegistration(ctx, f.q, alice.ID, cer, b.create(t, raw), ""); err != nil {
		t.Fatal(err)
	}
	cer, raw, err = moved.BeginLogin(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := moved.FinishLogin(ctx, f.q, alice.ID, cer, b.get(t, raw)); err != nil {
		t.Errorf("a passkey of the new host: %v", err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	tests := []struct {
		name string
		want string // "" for ErrName
	}{
		{"", passkey.DefaultName},
		{" \t ", passkey.DefaultName},
		{"  YubiKey 5C  ", "YubiKey 5C"},
		{strings.Repeat("é", passkey.MaxNameLength), strings.Repeat("é", passkey.MaxNameLength)},
		{strings.Repeat("é", passkey.MaxNameLength+1), ""},
		{"two\nlines", ""},
		{"nul\x00", ""},
		{"bad \xff byte", ""},
	}
	for _, tt := range tests {
		cer, raw, err := f.s.BeginRegistration(ctx, f.q, alice)
		if err != nil {
			t.Fatal(err)
		}
		resp := newAuthenticator(t).create(t, raw)
		c, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer, resp, tt.name)
		switch {
		case tt.want == "" && !errors.Is(err, passkey.ErrName):
			t.Errorf("name %q: %+v, %v; want ErrName", tt.name, c, err)
		case tt.want == "":
			// The ceremony is not used up by a name refused.
			if _, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer, resp, "fine"); err != nil {
				t.Errorf("name %q refused, then a fine one: %v", tt.name, err)
			}
		case err != nil || c.Name != tt.want:
			t.Errorf("name %q: %q, %v; want %q", tt.name, c.Name, err, tt.want)
		}
	}
}

func TestMaxPerUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	for range passkey.MaxPerUser - 1 {
		f.register(t, alice, newAuthenticator(t), "")
	}
	// Two registrations begun with room for one.
	cer1, raw1, err := f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	cer2, raw2, err := f.s.BeginRegistration(ctx, f.q, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer1, newAuthenticator(t).create(t, raw1), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.FinishRegistration(ctx, f.q, alice.ID, cer2, newAuthenticator(t).create(t, raw2), ""); !errors.Is(err, passkey.ErrTooMany) {
		t.Errorf("FinishRegistration past the most: %v, want ErrTooMany", err)
	}
	if _, _, err := f.s.BeginRegistration(ctx, f.q, alice); !errors.Is(err, passkey.ErrTooMany) {
		t.Errorf("BeginRegistration at the most: %v, want ErrTooMany", err)
	}
	// The ceremony of a sign-in lists them all.
	cer, raw, err := f.s.BeginLogin(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, raw); len(o.AllowCredentials) != passkey.MaxPerUser || cer == "" {
		t.Errorf("allowCredentials has %d, want %d", len(o.AllowCredentials), passkey.MaxPerUser)
	}
}

// Requests that finish one ceremony at once, each in its own transaction:
// one passes.
func TestFinishConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	a := newAuthenticator(t)
	f.register(t, alice, a, "")
	cer, raw, err := f.s.BeginLogin(ctx, f.q, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp := a.get(t, raw)
	n := int(min(f.pool.Config().MaxConns, 8))
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			errs[i] = pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "SELECT 1")
				ready.Done()
				ready.Wait()
				if err != nil {
					return err
				}
				if _, err := f.s.FinishLogin(ctx, db.New(tx), alice.ID, cer, resp); err != nil {
					return err
				}
				time.Sleep(50 * time.Millisecond) // hold the row while the others come
				return nil
			})
		})
	}
	wg.Wait()
	passed := 0
	for _, err := range errs {
		switch {
		case err == nil:
			passed++
		case !errors.Is(err, passkey.ErrInvalid):
			t.Errorf("%v, want nil or ErrInvalid", err)
		}
	}
	if passed != 1 {
		t.Errorf("%d of %d finishes at once passed, want 1", passed, n)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	alice := f.newUser(t, "alice@example.com")
	if _, _, err := f.s.BeginRegistration(ctx, f.q, alice); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	cer, _, err := f.s.BeginPasswordless(ctx, f.q)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Prune(ctx, f.q, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	var left int
	var hashed bool
	if err := f.pool.QueryRow(ctx, `SELECT count(*), bool_and(hash = sha256(convert_to($1, 'UTF8'))) FROM passkey_ceremonies`, cer).Scan(&left, &hashed); err != nil {
		t.Fatal(err)
	}
	if left != 1 || !hashed {
		t.Errorf("after Prune: %d ceremonies (kept by the SHA-256 of the handle: %v); want the live one", left, hashed)
	}
}

// flip returns the base64url handle tok with its first character changed.
func flip(tok string) string {
	if tok[0] == 'A' {
		return "B" + tok[1:]
	}
	return "A" + tok[1:]
}

func TestAMR(t *testing.T) {
	tests := []struct {
		c    passkey.Credential
		want []string
	}{
		{passkey.Credential{}, []string{"hwk"}},
		{passkey.Credential{UserVerified: true}, []string{"hwk", "user"}},
		{passkey.Credential{BackupEligible: true}, []string{"swk"}},
		{passkey.Credential{BackupEligible: true, BackupState: true, UserVerified: true}, []string{"swk", "user"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, passkey.AMR(tt.c)); diff != "" {
			t.Errorf("AMR(%+v) (-want +got):\n%s", tt.c, diff)
		}
	}
}
