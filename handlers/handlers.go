// Package handlers implements the operations of api/openapi.yaml: one type
// per tag of the spec, all embedded in Server.
//
// Handlers hold no authentication code and none of the role checks the spec
// declares: the gate has verified the bearer token and the
// operation's x-roles before a request reaches them, and access.Caller
// tells who called. They check only what the spec cannot say: object-level
// rules (someone else's note is 404, an admin may list another user's
// items), and, for account administration, that the caller's account still
// backs its token (accounts.AsAdmin).
package handlers

import (
	"cmp"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/audit"
	"github.com/rolegate/rolegate/internal/authorize"
	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/mail"
	"github.com/rolegate/rolegate/internal/mfa"
	"github.com/rolegate/rolegate/internal/orgs"
	"github.com/rolegate/rolegate/internal/passkey"
	"github.com/rolegate/rolegate/internal/password"
	"github.com/rolegate/rolegate/internal/revocation"
	"github.com/rolegate/rolegate/internal/sessions"
	"github.com/rolegate/rolegate/internal/signin"
	"github.com/rolegate/rolegate/token"
)

// Server implements every operation of the spec.
type Server struct {
	Health
	Auth
	Notes
	Users
	Clients
	Revocations
	AuditTrail
	Documents
	Meta
	Discovery
	Browser
	MFA
	Orgs
}

var _ api.StrictServerInterface = (*Server)(nil)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Hasher *password.Pool
	Tokens *token.Manager
	// IDTokens signs OpenID Connect id tokens and verifies the hints of
	// logout requests, with keys of their own; the JWKS publishes them
	// (Discovery.IDTokens).
	IDTokens *token.IDTokens
	// SpecRoles are the roles the spec names, which cannot be deleted.
	SpecRoles []string
	// Store keeps the documents' bytes.
	Store *documents.Store
	// PDF reads and splits documents within work bounds; nil means the
	// default bounds and no limit on operations at once.
	PDF *documents.Processor
	// QuotaBytes bounds the bytes one user's documents take together; zero
	// means no bound.
	QuotaBytes int64
	// Meta serves the docs page and the spec.
	Meta Meta
	// Sessions starts, refreshes and ends sessions.
	Sessions *sessions.Service
	// Feed tells whether this replica follows the revocation log.
	Feed Feed
	// Discovery serves the public keys and the metadata.
	Discovery Discovery
	// Audit writes the audit trail.
	Audit *audit.Log
	// Hashing bounds the passwords one client network has hashed at once
	// (see Auth.Hashing).
	Hashing interface {
		Enter(addr string) (release func(), ok bool)
	}
	// Draining, once true, makes /readyz answer 503 and refuses new
	// revocation streams.
	Draining *atomic.Bool
	// Revocations is this replica's revocation state, which the
	// revocation streams follow.
	Revocations *revocation.List
	// FeedStreams bounds the feeds' streams served at once.
	FeedStreams int
	// Heartbeat is how often an idle feed stream sends a comment; 0 means
	// 15 seconds.
	Heartbeat time.Duration
	// PasswordGrant says whether /token takes grant_type=password.
	PasswordGrant bool
	// CSRFKey signs the sign-in pages' CSRF tokens; every replica has the
	// same.
	CSRFKey []byte
	// SessionTTL is a browser session's absolute lifetime.
	SessionTTL time.Duration
	// BuiltInClients are rolegate's own clients (the docs page).
	BuiltInClients []authorize.Client
	// Mail sends what mail.Enqueue queued: a handler that queues a
	// message calls its Notify once its transaction has committed.
	Mail *mail.Outbox
	// ResetTTL is how long a password reset mail's link works.
	ResetTTL time.Duration
	// SignUp opens sign-up, with the roles SignUpRoles.
	SignUp      bool
	SignUpRoles []string
	// MailPerAddress bounds the mail to one address in an hour; zero
	// means no bound.
	MailPerAddress int
	// RequireVerifiedEmail refuses sign-in to accounts whose address is
	// not verified.
	RequireVerifiedEmail bool
	// Sealer seals and opens the secrets of authenticator apps.
	Sealer *mfa.Sealer
	// Passkeys runs the WebAuthn ceremonies; nil turns passkeys off.
	Passkeys *passkey.Service
	// Orgs keeps the organizations and their members.
	Orgs *orgs.Store
	// Memberships is this replica's copy of the memberships, whose feed
	// readiness reports on and the membership streams pass on.
	Memberships *orgs.Memberships
}

// New returns a Server over deps.
func New(d Deps) *Server {
	q := db.New(d.Pool)
	pdf := d.PDF
	if pdf == nil {
		pdf = &documents.Processor{}
	}
	auth := Auth{Pool: d.Pool, Queries: q, Hasher: d.Hasher, Tokens: d.Tokens, Sessions: d.Sessions, Audit: d.Audit, Hashing: d.Hashing,
		Clients: &ClientDirectory{Queries: q, BuiltIn: d.BuiltInClients}, PasswordGrant: d.PasswordGrant, IDTokens: d.IDTokens,
		Mailer:               Mailer{Pool: d.Pool, Outbox: d.Mail, PublicURL: d.Discovery.PublicURL, Now: d.Sessions.Now, PerAddress: d.MailPerAddress},
		RequireVerifiedEmail: d.RequireVerifiedEmail, Sealer: d.Sealer, Passkeys: d.Passkeys}
	streams := &Streams{Slots: make(chan struct{}, max(d.FeedStreams, 1)), Heartbeat: d.Heartbeat, Now: d.Sessions.Now,
		Draining: d.Draining, Revoked: d.Revocations.Revoked}
	return &Server{
		Health: Health{DB: d.Pool, Feed: d.Feed, Memberships: d.Memberships, Draining: d.Draining},
		Auth:   auth,
		Browser: Browser{Auth: auth, Cookies: signin.NewCookies(d.Discovery.PublicURL), CSRF: signin.CSRF{Key: d.CSRFKey},
			Issuer: d.Discovery.Issuer, PublicURL: d.Discovery.PublicURL, SessionTTL: d.SessionTTL, Now: d.Sessions.Now,
			ResetTTL: cmp.Or(d.ResetTTL, 30*time.Minute), SignUpOpen: d.SignUp, SignUpRoles: d.SignUpRoles},
		Notes: Notes{Queries: q},
		Users: Users{Pool: d.Pool, Queries: q, Hasher: d.Hasher, SpecRoles: d.SpecRoles, Store: d.Store, Sessions: d.Sessions, Audit: d.Audit,
			Passkeys: d.Passkeys},
		Clients:     Clients{Pool: d.Pool, Queries: q, Sessions: d.Sessions, Audit: d.Audit},
		Revocations: Revocations{Queries: q, List: d.Revocations, Streams: streams, Now: d.Sessions.Now},
		AuditTrail:  AuditTrail{Queries: q},
		Documents:   Documents{Pool: d.Pool, Queries: q, Store: d.Store, PDF: pdf, QuotaBytes: d.QuotaBytes},
		Meta:        d.Meta,
		Discovery:   d.Discovery,
		MFA: MFA{Pool: d.Pool, Queries: q, Sealer: d.Sealer, Hasher: d.Hasher, Sessions: d.Sessions, Audit: d.Audit,
			Issuer: totpIssuer(d.Discovery.PublicURL), Passkeys: d.Passkeys},
		Orgs: Orgs{Store: d.Orgs, Queries: q, Audit: d.Audit, Memberships: d.Memberships, Streams: streams},
	}
}
