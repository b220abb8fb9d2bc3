// Package passkey keeps accounts' passkeys (WebAuthn Level 2 credentials)
// in PostgreSQL and runs their ceremonies with github.com/go-webauthn/webauthn:
// registration; an assertion as the second factor of a known account; and a
// passwordless sign-in, whose account the passkey's user handle names.
//
// A ceremony is begun by one request and finished by another, maybe on
// another replica, so its state (the library's SessionData) is stored, by the
// SHA-256 of a random handle that the caller hands to the browser with the
// options and takes back with the answer. It lives CeremonyTTL and is used
// once, even by two requests at once: an UPDATE that only one of them can
// make.
//
// Every function runs in the caller's *db.Queries, so in its transaction.
// A Finish function uses its ceremony up before it verifies the answer, so
// a refused answer voids the ceremony too once the caller commits (a caller
// that rolls back leaves it to its expiry); only an answer too large to
// read, and a name FinishRegistration refuses, leave it unused.
//
// Every refusal of a ceremony or of the browser's answer is the one
// ErrInvalid, so that an answer tells nothing of why; the text wrapped with
// it says why, for logs only. Other errors are failures, not refusals.
//
// Relying party: the origin of Config.PublicURL and its host as the RP ID.
// A browser allows WebAuthn only in a secure context and never on an IP
// address, so New refuses such a URL: http://127.0.0.1:8080 cannot have
// passkeys, http://localhost:8080 can.
package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
)

// CeremonyTTL is how long a ceremony may take from its options to the
// browser's answer; the options ask the browser for the same timeout.
const CeremonyTTL = 5 * time.Minute

// MaxResponseSize is the most bytes of a browser's answer (the JSON of its
// PublicKeyCredential) that a Finish function reads; a larger one is
// refused unparsed.
const MaxResponseSize = 64 << 10

// MaxNameLength is the most characters of a passkey's name.
const MaxNameLength = 64

// DefaultName is the name of a passkey registered without one.
const DefaultName = "Passkey"

// MaxPerUser is how many passkeys an account may have: it bounds the
// options and ceremonies of a sign-in, which list them all.
const MaxPerUser = 20

// handleSize is the size of a user handle: random, and never the account's
// id, which the authenticator would otherwise keep and show to anyone who
// asks it.
const handleSize = 32

// ceremonySize is the length of a ceremony handle: 256 bits in base64url.
const ceremonySize = 43

// The kinds of ceremonies, as passkey_ceremonies.kind stores them.
const (
	kindRegister = "register"
	kindLogin    = "login"
)

// ErrInvalid is the refusal of a ceremony or of the browser's answer to it:
// a ceremony that is unknown, expired, used, of another kind or of another
// account; an answer that is too large, malformed, of another origin or
// relying party, for another challenge, wrongly signed, of a passkey the
// account does not have (or another account has), or whose signature
// counter did not go up (a cloned authenticator).
var ErrInvalid = errors.New("passkey: the ceremony or the authenticator's answer is not valid")

// ErrNoPasskeys is BeginLogin's refusal when the account has no passkey
// for this relying party.
var ErrNoPasskeys = errors.New("passkey: the account has no passkey")

// ErrTooMany is the refusal to register a passkey for an account that has
// MaxPerUser of them.
var ErrTooMany = errors.New("passkey: the account has as many passkeys as it may")

// ErrName is FinishRegistration's refusal of a name longer than
// MaxNameLength characters, or one that is not valid UTF-8 or holds
// control characters.
var ErrName = errors.New("passkey: a passkey's name is at most 64 characters of text")

// ErrPublicURL is New's refusal of a public URL that browsers do not allow
// WebAuthn on: one without a host, with an IP address for a host, or
// http:// on a host other than localhost.
var ErrPublicURL = errors.New("passkey: the public URL cannot be a WebAuthn origin")

// Config is what New needs.
type Config struct {
	// PublicURL is the URL browsers reach rolegate by
	// (ROLEGATE_PUBLIC_URL): its origin is the one ceremonies are accepted
	// from, and its host the relying party id.
	PublicURL string
	// RPName is the name authenticators show for the relying party;
	// "rolegate" when "".
	RPName string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service runs the ceremonies of one relying party.
type Service struct {
	wa     *webauthn.WebAuthn
	rpID   string
	origin string
	now    func() time.Time
}

// New returns the Service of cfg. It fails with ErrPublicURL when browsers
// would refuse WebAuthn on cfg.PublicURL; a server may then run without
// passkeys.
func New(cfg Config) (*Service, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicURL, err)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme != "https" && u.Scheme != "http" || host == "":
		return nil, fmt.Errorf("%w: %q is not an http or https URL with a host", ErrPublicURL, cfg.PublicURL)
	case net.ParseIP(host) != nil:
		return nil, fmt.Errorf("%w: its host %s is an IP address, which is no relying party id and on which browsers refuse WebAuthn; on this machine, use http://localhost instead", ErrPublicURL, host)
	case u.Scheme == "http" && host != "localhost" && !strings.HasSuffix(host, ".localhost"):
		return nil, fmt.Errorf("%w: browsers allow WebAuthn on http only for localhost, not %s; use https", ErrPublicURL, host)
	}
	origin := u.Scheme + "://" + host
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80") {
		origin += ":" + p
	}
	name := cfg.RPName
	if name == "" {
		name = "rolegate"
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	timeout := webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: name, RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		// Expiry is the database's, on the injected clock; the library's
		// would be on time.Now.
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicURL, err)
	}
	return &Service{wa: wa, rpID: host, origin: origin, now: now}, nil
}

// RPID returns the relying party id: the public URL's host.
func (s *Service) RPID() string { return s.rpID }

// Origin returns the one origin ceremonies are accepted from.
func (s *Service) Origin() string { return s.origin }

// User is the account a passkey is registered for.
type User struct {
	// ID is the account's id.
	ID int64
	// Email is the name authenticators show for the account.
	Email string
	// DisplayName is a friendlier name they may show; Email when "".
	DisplayName string
}

// Credential is a passkey as the account holder sees it: no key material.
type Credential struct {
	// ID is the passkey's id, which Remove takes.
	ID int64
	// Name is what the account holder calls it.
	Name string
	// AAGUID is the authenticator model as the authenticator says (no
	// attestation is asked for, so it is unverified); all zeros when it did
	// not say.
	AAGUID string
	// Transports are how the browser reached the authenticator: usb, nfc,
	// ble, smart-card, hybrid, internal.
	Transports []string
	// BackupEligible tells whether the key may be synced to other devices
	// (a synced passkey) rather than bound to one; BackupState whether it
	// was backed up at its last ceremony.
	BackupEligible, BackupState bool
	// CreatedAt is when it was registered; LastUsedAt when it last signed
	// in, zero before.
	CreatedAt, LastUsedAt time.Time
	// UserVerified tells whether the authenticator verified the user (a PIN
	// or biometrics: the UV flag) in the ceremony that returned the
	// Credential; always false from List.
	UserVerified bool
}

// AMR returns the RFC 8176 methods that an accepted ceremony of c proves:
// hwk for a key bound to its device (not backup-eligible: a key the
// authenticator says it keeps in hardware; without attestation that is its
// word), swk for a synced one (backup-eligible, so held by software that
// copies it), and user when the authenticator verified the user. RFC 8176
// defines user as a test of user presence, which every assertion has;
// AMR claims it only with verification, the stronger test, since no RFC
// 8176 value names verification by an unknown method (PIN or biometrics).
func AMR(c Credential) []string {
	m := "hwk"
	if c.BackupEligible {
		m = "swk"
	}
	if c.UserVerified {
		return []string{m, "user"}
	}
	return []string{m}
}

// BeginRegistration begins registering a passkey for user and returns the
// ceremony's handle and the options for navigator.credentials.create(), as
// a PublicKeyCredentialCreationOptionsJSON (what
// PublicKeyCredential.parseCreationOptionsFromJSON takes): a discoverable
// credential (resident key required), user verification preferred, no
// attestation, and the account's passkeys excluded. The account's user
// handle is made on its first registration. ErrTooMany when the account
// has MaxPerUser passkeys.
func (s *Service) BeginRegistration(ctx context.Context, q *db.Queries, user User) (ceremony string, options json.RawMessage, err error) {
	n, err := q.CountPasskeys(ctx, user.ID)
	if err != nil {
		return "", nil, err
	}
	if n >= MaxPerUser {
		return "", nil, ErrTooMany
	}
	fresh := make([]byte, handleSize)
	_, _ = rand.Read(fresh)
	handle, err := q.EnsurePasskeyHandle(ctx, db.EnsurePasskeyHandleParams{UserID: user.ID, Handle: fresh, Now: ts(s.now())})
	if err != nil {
		return "", nil, err
	}
	acct, err := s.account(ctx, q, user.ID, handle)
	if err != nil {
		return "", nil, err
	}
	acct.name, acct.displayName = user.Email, user.DisplayName
	if acct.displayName == "" {
		acct.displayName = user.Email
	}
	creation, sd, err := s.wa.BeginRegistration(acct,
		webauthn.WithExclusions(webauthn.Credentials(acct.creds).CredentialDescriptors()),
		// Asked for, so that a browser's answer with it is not refused as
		// unsolicited.
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return "", nil, err
	}
	return s.begin(ctx, q, kindRegister, &user.ID, sd, creation.Response)
}

// FinishRegistration finishes the registration ceremony of user with
// response, the JSON of the PublicKeyCredential that
// navigator.credentials.create() gave (its toJSON(), a
// RegistrationResponseJSON), and stores the passkey as name (trimmed;
// DefaultName when empty). ErrName for a name that cannot be, before the
// ceremony is used; ErrTooMany when the account has MaxPerUser passkeys;
// ErrInvalid for every refusal of the ceremony or response, including a
// credential registered already, to this account or another.
func (s *Service) FinishRegistration(ctx context.Context, q *db.Queries, user int64, ceremony string, response []byte, name string) (Credential, error) {
	name, err := cleanName(name)
	if err != nil {
		return Credential{}, err
	}
	if err := checkSize(response); err != nil {
		return Credential{}, err
	}
	sd, err := s.use(ctx, q, kindRegister, &user, ceremony)
	if err != nil {
		return Credential{}, err
	}
	handle, err := handleOf(ctx, q, user)
	if err != nil {
		return Credential{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Credential{}, invalid(err)
	}
	cred, err := s.wa.CreateCredential(&account{handle: handle}, sd, parsed)
	if err != nil {
		return Credential{}, invalid(err)
	}
	n, err := q.CountPasskeys(ctx, user)
	if err != nil {
		return Credential{}, err
	}
	if n >= MaxPerUser {
		return Credential{}, ErrTooMany
	}
	aaguid, err := uuid.FromBytes(cred.Authenticator.AAGUID)
	if err != nil {
		return Credential{}, fmt.Errorf("%w: the AAGUID: %v", ErrInvalid, err)
	}
	c := Credential{
		Name: name, AAGUID: aaguid.String(), Transports: transports(cred.Transport),
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		UserVerified: cred.Flags.UserVerified,
	}
	r, err := q.CreatePasskey(ctx, db.CreatePasskeyParams{
		UserID: user, RpID: sd.GetRelyingPartyID(s.rpID), CredentialID: cred.ID, PublicKey: cred.PublicKey,
		SignCount: int64(cred.Authenticator.SignCount), Aaguid: c.AAGUID, Transports: c.Transports,
		BackupEligible: c.BackupEligible, BackupState: c.BackupState, Name: name, Now: ts(s.now()),
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Credential{}, fmt.Errorf("%w: the credential is registered already", ErrInvalid)
	}
	if err != nil {
		return Credential{}, err
	}
	c.ID, c.CreatedAt = r.ID, r.CreatedAt.Time
	return c, nil
}

// BeginLogin begins an assertion of one of user's passkeys, as a second
// factor, and returns the ceremony's handle and the options for
// navigator.credentials.get(), as a PublicKeyCredentialRequestOptionsJSON
// (what PublicKeyCredential.parseRequestOptionsFromJSON takes): the
// account's passkeys as allowCredentials, user verification preferred.
// ErrNoPasskeys when the account has none.
func (s *Service) BeginLogin(ctx context.Context, q *db.Queries, user int64) (ceremony string, options json.RawMessage, err error) {
	handle, err := q.GetPasskeyHandle(ctx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, ErrNoPasskeys
	}
	if err != nil {
		return "", nil, err
	}
	acct, err := s.account(ctx, q, user, handle)
	if err != nil {
		return "", nil, err
	}
	if len(acct.creds) == 0 {
		return "", nil, ErrNoPasskeys
	}
	assertion, sd, err := s.wa.BeginLogin(acct)
	if err != nil {
		return "", nil, err
	}
	return s.begin(ctx, q, kindLogin, &user, sd, assertion.Response)
}

// FinishLogin finishes user's assertion ceremony with response, the JSON
// of the PublicKeyCredential that navigator.credentials.get() gave (its
// toJSON(), an AuthenticationResponseJSON), and returns the passkey, whose
// signature counter and last use it records. ErrInvalid for every refusal.
func (s *Service) FinishLogin(ctx context.Context, q *db.Queries, user int64, ceremony string, response []byte) (Credential, error) {
	if err := checkSize(response); err != nil {
		return Credential{}, err
	}
	sd, err := s.use(ctx, q, kindLogin, &user, ceremony)
	if err != nil {
		return Credential{}, err
	}
	handle, err := handleOf(ctx, q, user)
	if err != nil {
		return Credential{}, err
	}
	acct, err := s.account(ctx, q, user, handle)
	if err != nil {
		return Credential{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Credential{}, invalid(err)
	}
	cred, err := s.wa.ValidateLogin(acct, sd, parsed)
	if err != nil {
		return Credential{}, invalid(err)
	}
	return s.accept(ctx, q, user, sd, cred, parsed)
}

// BeginPasswordless begins a passwordless sign-in, whose account the
// passkey will name, and returns the ceremony's handle and the options for
// navigator.credentials.get(), as a PublicKeyCredentialRequestOptionsJSON:
// no allowCredentials (the browser offers the passkeys it has for the
// relying party), user verification preferred. Anyone may call it, and each
// call stores a ceremony until Prune: the caller throttles it.
func (s *Service) BeginPasswordless(ctx context.Context, q *db.Queries) (ceremony string, options json.RawMessage, err error) {
	assertion, sd, err := s.wa.BeginDiscoverableLogin()
	if err != nil {
		return "", nil, err
	}
	return s.begin(ctx, q, kindLogin, nil, sd, assertion.Response)
}

// FinishPasswordless finishes a passwordless sign-in with response (as
// FinishLogin's), and returns the account whose user handle the passkey
// gave, and the passkey, whose signature counter and last use it records.
// ErrInvalid for every refusal. The account is not checked further: the
// caller refuses a disabled one, as after a password.
func (s *Service) FinishPasswordless(ctx context.Context, q *db.Queries, ceremony string, response []byte) (user int64, c Credential, err error) {
	if err := checkSize(response); err != nil {
		return 0, Credential{}, err
	}
	sd, err := s.use(ctx, q, kindLogin, nil, ceremony)
	if err != nil {
		return 0, Credential{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return 0, Credential{}, invalid(err)
	}
	// The library wraps what the lookup returns as a refusal: a failure
	// of the database is kept aside, to be returned as the failure it is.
	var failed error
	lookup := func(_, userHandle []byte) (webauthn.User, error) {
		id, err := q.GetUserByPasskeyHandle(ctx, userHandle)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errors.New("no account has the user handle")
		}
		if err != nil {
			failed = err
			return nil, err
		}
		acct, err := s.account(ctx, q, id, userHandle)
		if err != nil {
			failed = err
			return nil, err
		}
		user = id
		return acct, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(lookup, sd, parsed)
	if failed != nil {
		return 0, Credential{}, failed
	}
	if err != nil {
		return 0, Credential{}, invalid(err)
	}
	c, err = s.accept(ctx, q, user, sd, cred, parsed)
	if err != nil {
		return 0, Credential{}, err
	}
	return user, c, nil
}

// accept records an assertion of cred, which the library verified: its
// signature counter (refused when it did not go up, unless it stays 0:
// the library's clone warning, and again in the UPDATE, against an
// assertion accepted meanwhile), backup state and time.
func (s *Service) accept(ctx context.Context, q *db.Queries, user int64, sd webauthn.SessionData, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (Credential, error) {
	flags := parsed.Response.AuthenticatorData.Flags
	if cred.Authenticator.CloneWarning {
		return Credential{}, fmt.Errorf("%w: the signature counter %d is not above the %d stored: a cloned authenticator?",
			ErrInvalid, parsed.Response.AuthenticatorData.Counter, cred.Authenticator.SignCount)
	}
	r, err := q.UsePasskey(ctx, db.UsePasskeyParams{
		SignCount: int64(cred.Authenticator.SignCount), BackupState: flags.HasBackupState(), Now: ts(s.now()),
		UserID: user, RpID: sd.GetRelyingPartyID(s.rpID), CredentialID: cred.ID,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Credential{}, fmt.Errorf("%w: the passkey is gone or another assertion raised its signature counter to %d or more", ErrInvalid, cred.Authenticator.SignCount)
	}
	if err != nil {
		return Credential{}, err
	}
	c := credential(db.ListPasskeysRow(r))
	c.UserVerified = flags.HasUserVerified()
	return c, nil
}

// List returns user's passkeys, oldest first, without key material:
// every one, also those of another relying party (registered before the
// public URL's host changed), which no longer sign in and which Has does
// not count.
func (s *Service) List(ctx context.Context, q *db.Queries, user int64) ([]Credential, error) {
	rows, err := q.ListPasskeys(ctx, user)
	if err != nil {
		return nil, err
	}
	cs := make([]Credential, len(rows))
	for i, r := range rows {
		cs[i] = credential(r)
	}
	return cs, nil
}

// Remove deletes user's passkey id and tells whether there was one. A
// ceremony begun with it is refused at its end.
func (s *Service) Remove(ctx context.Context, q *db.Queries, user, id int64) (bool, error) {
	n, err := q.DeletePasskey(ctx, db.DeletePasskeyParams{ID: id, UserID: user})
	return n > 0, err
}

// RemoveAll deletes every passkey of user (an administrator's reset of
// its factors) and its ceremonies under way, and returns how many passkeys
// there were. The user handle stays the account's.
func (s *Service) RemoveAll(ctx context.Context, q *db.Queries, user int64) (int64, error) {
	n, err := q.DeleteUserPasskeys(ctx, user)
	if err != nil {
		return 0, err
	}
	return n, q.DeleteUserPasskeyCeremonies(ctx, &user)
}

// Has tells whether user has a passkey for this relying party: a second
// factor that a sign-in may ask for.
func (s *Service) Has(ctx context.Context, q *db.Queries, user int64) (bool, error) {
	return q.HasPasskey(ctx, db.HasPasskeyParams{UserID: user, RpID: s.rpID})
}

// Prune deletes the ceremonies that expired before before.
func (s *Service) Prune(ctx context.Context, q *db.Queries, before time.Time) error {
	_, err := q.DeleteOldPasskeyCeremonies(ctx, ts(before))
	return err
}

// begin stores the ceremony sd of kind, of user (nil for a passwordless
// sign-in), valid CeremonyTTL from now, and returns its handle, 256 random
// bits of which only the SHA-256 is kept, and options as JSON.
func (s *Service) begin(ctx context.Context, q *db.Queries, kind string, user *int64, sd *webauthn.SessionData, options any) (string, json.RawMessage, error) {
	data, err := json.Marshal(sd)
	if err != nil {
		return "", nil, err
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return "", nil, err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	err = q.CreatePasskeyCeremony(ctx, db.CreatePasskeyCeremonyParams{
		Hash: sha256Sum(tok), UserID: user, Kind: kind, SessionData: data,
		CreatedAt: ts(now), ExpiresAt: ts(now.Add(CeremonyTTL)),
	})
	if err != nil {
		return "", nil, err
	}
	return tok, opts, nil
}

// use marks the live ceremony of kind and user (nil for a passwordless
// sign-in) with handle tok used, and returns its session data.
func (s *Service) use(ctx context.Context, q *db.Queries, kind string, user *int64, tok string) (webauthn.SessionData, error) {
	if len(tok) != ceremonySize {
		return webauthn.SessionData{}, fmt.Errorf("%w: a ceremony handle of %d bytes", ErrInvalid, len(tok))
	}
	data, err := q.UsePasskeyCeremony(ctx, db.UsePasskeyCeremonyParams{Hash: sha256Sum(tok), Kind: kind, UserID: user, Now: ts(s.now())})
	if errors.Is(err, pgx.ErrNoRows) {
		return webauthn.SessionData{}, fmt.Errorf("%w: no live %s ceremony of the account has the handle (unknown, expired, used, or another's)", ErrInvalid, kind)
	}
	if err != nil {
		return webauthn.SessionData{}, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(data, &sd); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("passkey: a stored ceremony does not decode: %w", err)
	}
	return sd, nil
}

// account is an account as the library sees it: its user handle and its
// passkeys for this relying party.
type account struct {
	handle            []byte
	name, displayName string
	creds             []webauthn.Credential
}

// WebAuthnID and the three methods below make an account a webauthn.User.
func (a *account) WebAuthnID() []byte                         { return a.handle }
func (a *account) WebAuthnName() string                       { return a.name }
func (a *account) WebAuthnDisplayName() string                { return a.displayName }
func (a *account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

// account returns user, whose user handle is handle, with its passkeys for
// this relying party.
func (s *Service) account(ctx context.Context, q *db.Queries, user int64, handle []byte) (*account, error) {
	rows, err := q.ListPasskeyKeys(ctx, db.ListPasskeyKeysParams{UserID: user, RpID: s.rpID})
	if err != nil {
		return nil, err
	}
	a := &account{handle: handle, creds: make([]webauthn.Credential, len(rows))}
	for i, r := range rows {
		aaguid, err := uuid.Parse(r.Aaguid)
		if err != nil {
			return nil, fmt.Errorf("passkey: passkey %d: %w", r.ID, err)
		}
		// The flags that the library compares with an assertion's: BE,
		// which must not change, and BS.
		var flags protocol.AuthenticatorFlags
		if r.BackupEligible {
			flags |= protocol.FlagBackupEligible
		}
		if r.BackupState {
			flags |= protocol.FlagBackupState
		}
		tr := make([]protocol.AuthenticatorTransport, len(r.Transports))
		for j, t := range r.Transports {
			tr[j] = protocol.AuthenticatorTransport(t)
		}
		a.creds[i] = webauthn.Credential{
			ID: r.CredentialID, PublicKey: r.PublicKey, Transport: tr, Flags: webauthn.NewCredentialFlags(flags),
			Authenticator: webauthn.Authenticator{AAGUID: aaguid[:], SignCount: uint32(r.SignCount)},
		}
	}
	return a, nil
}

func credential(r db.ListPasskeysRow) Credential {
	return Credential{
		ID: r.ID, Name: r.Name, AAGUID: r.Aaguid, Transports: r.Transports,
		BackupEligible: r.BackupEligible, BackupState: r.BackupState,
		CreatedAt: r.CreatedAt.Time, LastUsedAt: r.LastUsedAt.Time,
	}
}

// knownTransports are the transports of WebAuthn Level 3 (and the
// library's remapping of older names): the only ones kept.
var knownTransports = []protocol.AuthenticatorTransport{protocol.USB, protocol.NFC, protocol.BLE, protocol.SmartCard, protocol.Hybrid, protocol.Internal}

// transports returns the known transports of ts, each once, in their
// order: the browser's list, which the client controls.
func transports(ts []protocol.AuthenticatorTransport) []string {
	out := []string{}
	for _, t := range ts {
		if slices.Contains(knownTransports, t) && !slices.Contains(out, string(t)) {
			out = append(out, string(t))
		}
	}
	return out
}

// cleanName returns name trimmed, DefaultName for an empty one; ErrName
// when it is too long, not valid UTF-8 or holds control characters.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return DefaultName, nil
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength || strings.ContainsFunc(name, unicode.IsControl):
		return "", ErrName
	}
	return name, nil
}

// checkSize refuses a response larger than MaxResponseSize, before it is
// parsed.
func checkSize(response []byte) error {
	if len(response) > MaxResponseSize {
		return fmt.Errorf("%w: a response of %d bytes, more than %d", ErrInvalid, len(response), MaxResponseSize)
	}
	return nil
}

// invalid returns the library's refusal err as ErrInvalid, with what it
// says for the log.
func invalid(err error) error {
	if pe, ok := errors.AsType[*protocol.Error](err); ok && pe.DevInfo != "" {
		return fmt.Errorf("%w: %s (%s)", ErrInvalid, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

// handleOf is the WebAuthn user handle of user, for finishing a
// ceremony: ErrInvalid when the account has none (it never began one).
func handleOf(ctx context.Context, q *db.Queries, user int64) ([]byte, error) {
	handle, err := q.GetPasskeyHandle(ctx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: the account has no user handle", ErrInvalid)
	}
	return handle, err
}
