package gate

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

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
	Blocked(ctx context.Context, keys []string) (time.Duration, error)
	Failed(ctx context.Context, key string, b throttle.Budget) error
	Succeeded(ctx context.Context, key string) error
}

// throttled serves a request of an operation with x-rate-limit: refused
// at once with 429 while its client address or account is past its
// budget; otherwise passed to next, and its answer counted: 400, 401 and
// 403 as failures, a 2xx as the account's success.
func (g *gate) throttled(o *operation, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, addr := httplog.Client(ctx)
	id := o.route.Operation.OperationID
	var addrKey, acctKey string
	var keys []string
	if o.limit.PerAddress != nil {
		addrKey = "address:" + id + ":" + addr
		keys = append(keys, addrKey)
	}
	if acct := account(r); o.limit.PerAccount != nil && acct != "" {
		acctKey = "account:" + id + ":" + acct
		keys = append(keys, acctKey)
	}
	wait, err := g.opts.Throttle.Blocked(ctx, keys)
	if err != nil {
		g.fail(o, w, r, dberr.Translate(err, ""))
		return
	}
	if wait > 0 {
		g.tooMany(o, w, r, wait, "Too many failed attempts for this account or address", keys)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	g.next.ServeHTTP(rec, r)

	// The answer is out; counting it must not depend on the client.
	ctx = context.WithoutCancel(ctx)
	var errs []error
	switch status := rec.status; {
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		if addrKey != "" {
			errs = append(errs, g.opts.Throttle.Failed(ctx, addrKey, *o.limit.PerAddress))
		}
		if acctKey != "" {
			errs = append(errs, g.opts.Throttle.Failed(ctx, acctKey, *o.limit.PerAccount))
		}
	case status >= 200 && status < 300 && acctKey != "":
		errs = append(errs, g.opts.Throttle.Succeeded(ctx, acctKey))
	}
	if err := errors.Join(errs...); err != nil {
		httplog.Logger(ctx).Error("throttling: could not count an attempt", "operation", id, "err", err)
	}
}

// tooMany is the 429 of a throttled request, in the operation's format.
func (g *gate) tooMany(o *operation, w http.ResponseWriter, r *http.Request, wait time.Duration, why string, keys []string) {
	secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
	httplog.Logger(r.Context()).Info("throttled", "operation", o.route.Operation.OperationID, "retry_after", secs)
	detail := why + "; retry after " + secs + " seconds."
	if g.opts.OnThrottled != nil && g.reported.first(strings.Join(keys, "\x00"), time.Now().Add(wait)) {
		g.opts.OnThrottled(r.Context(), why, account(r))
	}
	if o.oauthErrors {
		w.Header().Set("Retry-After", secs)
		oauth.Write(w, &oauth.Error{Status: http.StatusTooManyRequests, Code: oauth.SlowDown, Description: detail})
		return
	}
	problem.Write(w, r, &problem.Error{Kind: problem.TooManyRequests, Detail: detail, Header: http.Header{"Retry-After": {secs}}})
}

// account is the account a request names, for its per-account budget: the
// canonical form of a login's username, a machine client's id (in the form
// or HTTP Basic), or the caller of a secured operation.
func account(r *http.Request) string {
	if c := access.Caller(r.Context()); c != nil {
		if c.ClientID != "" {
			return "client:" + c.ClientID
		}
		return "user:" + strconv.FormatInt(c.UserID, 10)
	}
	if u := r.PostForm.Get("username"); u != "" {
		if key, err := email.Canonical(u); err == nil {
			return "email:" + key
		}
		return "email:" + strings.ToLower(u)
	}
	if id := r.PostForm.Get("client_id"); id != "" {
		return "client:" + id
	}
	if id, _, ok := r.BasicAuth(); ok && id != "" {
		return "client:" + id
	}
	return ""
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
