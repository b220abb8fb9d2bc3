package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/problem"
)

// Throttler keeps the failure budgets of operations that declare
// x-rate-limit; *throttle.Limiter is one.
type Throttler interface {
	// Network is the client network the address addr counts in.
	Network(addr string) string
	// Reserve counts an attempt against keys before it is made; when any
	// of them is blocked, it counts none and wait is how long it stays so.
	Reserve(ctx context.Context, keys []throttle.Key) (res throttle.Reservation, wait time.Duration, err error)
	// Settle ends a reservation by the status of the attempt's answer.
	Settle(ctx context.Context, res throttle.Reservation, status int) error
}

// throttled serves a request of an operation with x-rate-limit. Its
// attempt is counted in advance against the budget of its client network
// and that of the account it names from that network (throttle.Reserve),
// and refused at once with 429 when either is spent; otherwise it is
// passed to next, and its reservation settled by the answer: 400, 401 and
// 403 keep it as a failure, anything else gives it back.
func (g *gate) throttled(o *operation, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, addr := httplog.Client(ctx)
	network := g.opts.Throttle.Network(addr)
	keys := make([]throttle.Key, 0, 2)
	if b := o.limit.PerAccount; b != nil {
		if acct := account(r); acct != "" {
			keys = append(keys, throttle.Key{Name: o.accountKey + network + " " + acct, Budget: *b, Resets: true})
		}
	}
	if b := o.limit.PerAddress; b != nil {
		keys = append(keys, throttle.Key{Name: o.addressKey + network, Budget: *b})
	}
	res, wait, err := g.opts.Throttle.Reserve(ctx, keys)
	if err != nil {
		g.fail(o, w, r, dberr.Translate(err, ""))
		return
	}
	if wait > 0 {
		g.tooMany(o, w, r, wait, "Too many failed attempts for this account or from this address", keys)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	served := false
	octx, succeeded := throttle.WithOutcome(ctx)
	r = r.WithContext(octx)
	defer func() {
		// The answer is out; settling must not depend on the client. A
		// handler that panicked answers 500.
		status := rec.status
		switch {
		case !served:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		case *succeeded:
			// An answer the handler says is a success: the sign-in page's
			// redirect, or the right password of an account that must
			// still give its second factor (mfa_required, a 400).
			status = http.StatusOK
		}
		if err := g.opts.Throttle.Settle(context.WithoutCancel(ctx), res, status); err != nil {
			httplog.Logger(ctx).Error("throttling: could not settle an attempt", "operation", o.route.Operation.OperationID, "err", err)
		}
	}()
	o.next.ServeHTTP(rec, r)
	served = true
}

// tooMany is the 429 of a throttled request, in the operation's format.
func (g *gate) tooMany(o *operation, w http.ResponseWriter, r *http.Request, wait time.Duration, why string, keys []throttle.Key) {
	secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
	httplog.Logger(r.Context()).Info("throttled", "operation", o.route.Operation.OperationID, "retry_after", secs)
	detail := why + "; retry after " + secs + " seconds."
	if g.opts.OnThrottled != nil && g.reported.first(joinNames(keys), time.Now().Add(wait)) {
		g.opts.OnThrottled(r.Context(), why, account(r))
	}
	if o.oauthErrors {
		w.Header().Set("Retry-After", secs)
		oauth.Write(w, &oauth.Error{Status: http.StatusTooManyRequests, Code: oauth.SlowDown, Description: detail})
		return
	}
	g.fail(o, w, r, &problem.Error{Kind: problem.TooManyRequests, Detail: detail, Header: http.Header{"Retry-After": {secs}}})
}

// joinNames joins the names of keys, for reported.
func joinNames(keys []throttle.Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.Name)
		b.WriteByte(0)
	}
	return b.String()
}

// account is the account a request names, for its per-account budget: the
// caller of a secured operation; on the token endpoint, for the password
// grant the canonical form of the username, for any other grant the machine
// client whose credentials it presents (form client_id or HTTP Basic, whose
// id is form-encoded: RFC 6749 section 2.3.1), whatever else the form holds,
// so that no decoy field moves a guess to another budget. An empty Basic id
// is no client.
func account(r *http.Request) string {
	if c := access.Caller(r.Context()); c != nil {
		if c.ClientID != "" {
			return "client:" + c.ClientID
		}
		return "user:" + strconv.FormatInt(c.UserID, 10)
	}
	if r.PostForm == nil {
		// The validator has buffered the body, which stays readable for
		// the handler; parsing is done once.
		_ = r.ParseForm()
	}
	u := ""
	switch grant := r.PostForm.Get("grant_type"); {
	case grant == oauth.GrantMFA || grant == "" && r.PostForm.Has("mfa_token"):
		// A second step (the token endpoint's, the sign-in page's) counts
		// against the account its mfa_token names (the id before the
		// dot), whatever else the form holds.
		if id, _, ok := strings.Cut(r.PostForm.Get("mfa_token"), "."); ok && id != "" && len(id) <= 19 && strings.Trim(id, "0123456789") == "" {
			return "user:" + id
		}
		return ""
	case grant == "password":
		u = r.PostForm.Get("username")
	case r.PostForm.Has("email"):
		u = r.PostForm.Get("email") // the sign-in and forgotten-password pages' forms
	default:
		u = jsonEmail(r) // a JSON body's email: the mails asked for
	}
	if u != "" || r.PostForm.Get("grant_type") == "password" {
		if u == "" {
			return ""
		}
		if key, err := email.Canonical(u); err == nil {
			return "email:" + key
		}
		return "email:" + keyPart(strings.ToLower(u))
	}
	if id := r.PostForm.Get("client_id"); id != "" {
		return "client:" + keyPart(id)
	}
	if id, _, ok := r.BasicAuth(); ok && id != "" {
		if s, err := url.QueryUnescape(id); err == nil {
			id = s
		}
		return "client:" + keyPart(id)
	}
	return ""
}

// jsonEmail is the email field of a JSON body, which the validator has
// buffered (and the body stays readable for the handler); "" for none.
func jsonEmail(r *http.Request) string {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" || r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	var v struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Email
}

// maxKeyPart bounds the part of a key a client chooses.
const maxKeyPart = 256

// keyPart is s as part of a throttling key: as it is when it is short,
// valid UTF-8 and free of NUL (which PostgreSQL's text cannot hold),
// otherwise its SHA-256, so that every name has a key of bounded length.
func keyPart(s string) string {
	if len(s) <= maxKeyPart && utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// statusRecorder notes the status of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// maxReported bounds the blocks a gate remembers having reported.
const maxReported = 4096

// reported remembers until when each blocked key set has been reported,
// so that OnThrottled hears of a block once.
type reported struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// first reports whether key's block, lasting until until, is not yet
// reported, and notes it as reported.
func (r *reported) first(key string, until time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if t, ok := r.until[key]; ok && now.Before(t) {
		return false
	}
	if r.until == nil || len(r.until) >= maxReported {
		// Forget the blocks that are over; past the bound, all of them:
		// at worst a block is reported twice.
		for k, t := range r.until {
			if !now.Before(t) {
				delete(r.until, k)
			}
		}
		if r.until == nil || len(r.until) >= maxReported {
			r.until = make(map[string]time.Time)
		}
	}
	r.until[key] = until
	return true
}
