// Package resource protects another Go service with rolegate's access
// tokens: the service has its own OpenAPI spec with its own x-roles, and
// New puts in front of its handler exactly the request path rolegate puts
// in front of its own (package gate), with the same fail-closed start-up
// checks (package access) and the same 401 and 403 answers, verifying
// tokens with the public keys rolegate publishes.
//
// At start New loads the spec, refusing one that leaves any operation's
// access undeclared or inconsistent before it sends a request anywhere;
// it then reads rolegate's RFC 8414 metadata at
// RolegateURL/.well-known/oauth-authorization-server, pins every token's
// iss to the metadata's issuer and its aud to Config.Audience, and fetches
// the JWKS from the metadata's jwks_uri, which must be on RolegateURL's
// origin. See [Verifier] for how the keys are kept current.
//
// Revocations (a logout, a change of roles, a disabled account, a token
// revoked by its jti) reach the service through rolegate's revocation
// feed, which it follows as a machine client holding the role
// resource-server (Config.ClientID): at start it takes a token with the
// client credentials grant at the metadata's token_endpoint (on
// RolegateURL's origin) and the snapshot of the revocations in force
// (GET /revocations), and refuses to start without them; it then follows
// the stream of changes (GET /revocations/events, server-sent events),
// reconnecting with backoff and Last-Event-ID, or a new snapshot after a
// gap, and a new token before the one it holds expires. The state is kept
// in memory, as rolegate's replicas keep theirs (package
// internal/revocation), and a revoked token is refused within a second.
// While the stream is down the service keeps the revocations it knows and
// [Handler.Ready] says why, for its readiness probe.
//
// A spec whose operations declare x-org (the path parameter that names an
// organization) and org:<role> entries in x-roles has them enforced as
// rolegate enforces its own: the caller's roles in that organization come
// from a copy of every membership held in memory, which the handler loads
// from rolegate's memberships feed (GET /memberships/events, with the same
// client and token) before New returns, and keeps current from the same
// stream, within a second of a change and without a call to rolegate per
// request. A caller who is not a member gets 404. The copy takes about 60
// bytes per membership.
package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/orgs"
)

// Config configures a protected service.
type Config struct {
	// RolegateURL is rolegate's base URL, such as https://auth.example.com,
	// under which it serves /.well-known/oauth-authorization-server: its
	// public URL (ROLEGATE_PUBLIC_URL), on whose origin its metadata names
	// the JWKS.
	RolegateURL string
	// Audience is the aud every token must carry: rolegate's
	// ROLEGATE_JWT_AUDIENCE ("rolegate" unless set).
	Audience string
	// Spec is the service's OpenAPI document (YAML or JSON) with the
	// x-roles of its operations.
	Spec []byte
	// HTTPClient fetches the metadata and the keys; nil means a client
	// with a 10-second timeout. Redirects are never followed, whatever the
	// client says, and every fetch is bounded by 10 seconds.
	HTTPClient *http.Client
	// Logger logs refused keys, key fetches and, through the handler New
	// returns, one line per request; nil means slog.Default().
	Logger *slog.Logger

	// RefetchInterval bounds the fetches a token with an unknown kid
	// causes to one per interval; 0 means 10 seconds.
	RefetchInterval time.Duration
	// RefreshInterval is how often the keys are fetched again in the
	// background; 0 means the JWKS response's Cache-Control max-age
	// (rolegate: 5 minutes, less than the 6 minutes a new key is published
	// before it signs), between 1 minute and 1 hour.
	RefreshInterval time.Duration
	// MaxBodyBytes and MaxUploadBytes are gate.Options': body limits of
	// operations whose spec declares no x-max-body-bytes (default 1 MiB),
	// and of multipart uploads (default 20 MiB).
	MaxBodyBytes, MaxUploadBytes int64
	// Now is the clock tokens are checked against; nil means time.Now.
	Now func() time.Time

	// ClientID and ClientSecret are a rolegate machine client's that holds
	// the role resource-server (`rolegate client add --name reports
	// --roles resource-server`): with them the verifier follows
	// rolegate's revocation feed (see [Verifier.Ready]) and, for a spec
	// with x-org operations, its memberships feed. Required unless
	// IgnoreRevocations and the spec has no x-org operation.
	ClientID, ClientSecret string
	// IgnoreRevocations lets the service run without the revocation feed:
	// a token rolegate revoked (a logout, a change of roles, a disabled
	// account) then passes here until its exp.
	IgnoreRevocations bool
}

// New returns the handler that takes every request of the operations of
// cfg.Spec through rolegate's gate to next: 404 and 405 outside the spec,
// 401 without a valid token, 403 for a token that holds none of the
// operation's x-roles, 413 over the body limit and 400 for a request the
// spec does not admit; next finds the verified claims with access.Caller.
// A token rolegate revoked is refused with 401 as an invalid one is.
// Requests get an X-Request-Id and a log line, as rolegate's do. It fails
// if the spec's access rules are not all declared, rolegate's metadata or
// keys cannot be read, or (unless cfg.IgnoreRevocations) the revocation
// snapshot cannot be taken with cfg's client; the keys are then refreshed
// and the revocation feed followed until ctx ends.
func New(ctx context.Context, cfg Config, next http.Handler) (*Handler, error) {
	if next == nil {
		return nil, errors.New("resource: no handler")
	}
	// The spec first: a service whose access rules are incomplete never
	// gets as far as asking rolegate for anything.
	spec, err := access.LoadSpec(ctx, cfg.Spec)
	if err != nil {
		return nil, err
	}
	scoped := slices.ContainsFunc(spec.Policy.Rules, func(r *access.Rule) bool { return r.Org != "" })
	if scoped && cfg.ClientID == "" {
		return nil, errors.New("resource: no ClientID: the spec's x-org operations need the memberships feed, which needs a machine client holding the role " + FeedRole)
	}
	// Until New returns the handler, what it starts ends with a failure.
	ctx, cancel := context.WithCancel(ctx)
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	h := &Handler{v: v, stop: cancel}
	opts := gate.Options{Verifier: v, MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes}
	var memberships *orgs.Memberships
	if scoped {
		base, _ := baseURL(cfg.RolegateURL) // newVerifier parsed it
		memberships = orgs.NewMemberships(cfg.Now)
		h.members = newFollower("memberships feed", base.JoinPath(MembershipsStreamPath).String(), newMembershipLog(memberships), v.creds, v.stream, v.logger)
		opts.Memberships = memberships
	}
	gated, err := gate.New(spec, opts, next)
	if err != nil {
		cancel()
		return nil, err
	}
	h.h = httplog.New(httplog.Options{Logger: v.logger, Context: access.Slot}, gated)
	v.start(ctx)
	if h.members != nil {
		go h.members.follow(ctx)
	}
	// Fail closed: no service that would pass a token revoked, or answer
	// 404 to every member, while its streams are not caught up.
	for _, f := range []*follower{v.feed, h.members} {
		if f == nil {
			continue
		}
		select {
		case <-f.up:
		case <-time.After(feedsWait):
			cancel()
			return nil, fmt.Errorf("resource: rolegate's %s did not catch up within %v: %w", f.name, feedsWait, f.Err())
		case <-ctx.Done():
			cancel()
			return nil, ctx.Err()
		}
	}
	if memberships != nil {
		v.logger.Info("rolegate's memberships loaded", "memberships", memberships.Len())
	}
	return h, nil
}

// feedsWait bounds how long New waits for each feed's stream to catch up.
const feedsWait = 30 * time.Second

// Handler is the handler New returns.
type Handler struct {
	h       http.Handler
	v       *Verifier
	members *follower          // nil unless the spec has x-org operations
	stop    context.CancelFunc // ends what New started, as New's ctx does
}

// ServeHTTP takes r through the gate to the service's handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

// Ready is nil while the handler follows rolegate's feeds: the
// verifier's revocation feed ([Verifier.Ready]), and the memberships feed
// when the spec has x-org operations; or why not, for the service's
// readiness probe.
func (h *Handler) Ready() error {
	err := h.v.Ready()
	if h.members != nil {
		if merr := h.members.Err(); merr != nil && err != nil {
			err = fmt.Errorf("%w; %w", err, merr)
		} else if merr != nil {
			err = merr
		}
	}
	return err
}
