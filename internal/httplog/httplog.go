// Package httplog gives every HTTP request an id and a logger, and logs one
// line per request when it ends.
package httplog

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type ctxKey struct{}

// requestInfo is a request's record, and the context the request is
// handed on with: it answers ctxKey itself (one allocation where
// context.WithValue would add a second).
type requestInfo struct {
	context.Context // the request's context, extended
	id              string
	base            *slog.Logger                // the server's logger
	logger          atomic.Pointer[slog.Logger] // base with the request id, made when first asked for
	req             *http.Request
	operation       string // set by SetOperation; "" until the request is routed
	trusted         []netip.Prefix
	rec             recorder  // the response writer handed on
	headers         [2]string // the values of X-Request-Id and X-Content-Type-Options
}

// Value answers ctxKey with the record, and every other key from the
// request's context.
func (ri *requestInfo) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return ri
	}
	return ri.Context.Value(key)
}

// HeaderRequestID is the response header that carries the request id.
const HeaderRequestID = "X-Request-Id"

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// Client returns the User-Agent of the request ctx belongs to and the
// address it came from (the peer's IP: rolegate trusts no forwarding
// header), or "" outside a request.
//
// The address is the peer's, unless the peer is a trusted proxy (see
// MiddlewareTrusting): then it is the rightmost address of
// X-Forwarded-For that is not a trusted proxy, since each proxy appends the
// address it received the request from and only trusted ones can be
// believed.
func Client(ctx context.Context) (userAgent, addr string) {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return "", ""
	}
	return ri.req.UserAgent(), clientAddr(ri.req, ri.trusted)
}

func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if !isTrusted(addr, trusted) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		ip, err := netip.ParseAddr(hop)
		if err != nil {
			return addr // a hop that is no address: trust nothing before it
		}
		if !isTrusted(hop, trusted) {
			return ip.Unmap().String()
		}
		addr = hop
	}
	return addr
}

func isTrusted(addr string, trusted []netip.Prefix) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// BasicAuth returns the HTTP Basic credentials of the request ctx belongs
// to, as net/http's Request.BasicAuth does.
func BasicAuth(ctx context.Context) (user, password string, ok bool) {
	ri, found := ctx.Value(ctxKey{}).(*requestInfo)
	if !found {
		return "", "", false
	}
	return ri.req.BasicAuth()
}

// Cookie returns the value of the request's cookie name, or "" when it
// has none (or the context is no request's).
func Cookie(ctx context.Context, name string) string {
	ri, found := ctx.Value(ctxKey{}).(*requestInfo)
	if !found {
		return ""
	}
	c, err := ri.req.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// SetOperation records that the request ctx belongs to is the operation
// id of the spec, for its log line and its metrics. The gate calls it once
// it has routed the request; outside a request it does nothing. It must be
// called on the goroutine serving the request.
func SetOperation(ctx context.Context, id string) {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		ri.operation = id
	}
}

// Operation returns the operation id SetOperation recorded for the request
// ctx belongs to, or "" if none was (a request no operation matched).
func Operation(ctx context.Context) string {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri.operation
	}
	return ""
}

// InRequest reports whether ctx belongs to a request that went through
// Middleware, even once the request is over.
func InRequest(ctx context.Context) bool {
	_, ok := ctx.Value(ctxKey{}).(*requestInfo)
	return ok
}

// Logger returns the request's logger, which carries its id, or
// slog.Default() outside a request.
func Logger(ctx context.Context) *slog.Logger {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return slog.Default()
	}
	// Most requests log nothing but their access line, so the logger that
	// carries the id is made only for those that do.
	if l := ri.logger.Load(); l != nil {
		return l
	}
	l := ri.base.With("request_id", ri.id)
	ri.logger.Store(l)
	return l
}

// Middleware gives each request a fresh random id (a client-sent
// X-Request-Id is not trusted: it would let callers forge log lines), sends
// it back as X-Request-Id, and logs method, path, operation (see
// SetOperation; "" when none matched), status, size and duration when the
// handler returns. The query string is not logged: it may hold
// secrets.
func Middleware(logger *slog.Logger, next http.Handler) http.Handler {
	return MiddlewareTrusting(logger, nil, next)
}

// MiddlewareTrusting is Middleware behind the proxies of trusted, whose
// X-Forwarded-For tells the client's address (see Client).
func MiddlewareTrusting(logger *slog.Logger, trusted []netip.Prefix, next http.Handler) http.Handler {
	return New(Options{Logger: logger, Trusted: trusted}, next)
}

// Options configure New.
type Options struct {
	// Logger receives the access lines and is the base of each request's
	// logger.
	Logger *slog.Logger
	// Trusted are the proxies whose X-Forwarded-For tells the client's
	// address (see Client).
	Trusted []netip.Prefix
	// AccessJSON, when set, is where access lines are written directly,
	// byte for byte as slog's JSONHandler (without options) writes them to
	// it: set it only when Logger is such a handler on AccessJSON with
	// LevelInfo enabled. A line with anything out of the ordinary to
	// escape still goes through Logger.
	AccessJSON io.Writer
	// Context, when set, derives each request's context from the one
	// net/http gives it, in the same copy of the request as the record
	// New adds (the server adds access.Slot).
	Context func(context.Context) context.Context
}

// New is Middleware with Options.
func New(o Options, next http.Handler) http.Handler {
	logger, trusted := o.Logger, o.Trusted
	access := accessLogger{logger: logger, json: o.AccessJSON}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newID()
		// One allocation for the request's record, which is also its
		// context, its response writer and its header values (each
		// capped, so that an append elsewhere copies rather than
		// overwrites).
		ctx := r.Context()
		if o.Context != nil {
			ctx = o.Context(ctx)
		}
		ri := &requestInfo{Context: ctx, id: id, base: logger, trusted: trusted, headers: [2]string{id, "nosniff"}}
		ri.rec.ResponseWriter = w
		h := w.Header()
		h[HeaderRequestID] = ri.headers[0:1:1]
		// No response is to be sniffed into another type than it declares.
		h["X-Content-Type-Options"] = ri.headers[1:2:2]
		r = r.WithContext(ri)
		ri.req = r
		defer access.log(ri, start) // also when the handler panics
		next.ServeHTTP(&ri.rec, r)
	})
}

// accessLogger writes access lines: through slog, or, when json is set,
// straight to json in slog's JSON form.
type accessLogger struct {
	logger *slog.Logger
	json   io.Writer
}

// lines are the buffers of access lines written directly.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// log writes the request's access log line.
func (a accessLogger) log(ri *requestInfo, start time.Time) {
	status := ri.rec.status
	if status == 0 {
		status = http.StatusOK
	}
	now := time.Now()
	if a.json != nil && plain(ri.id) && plain(ri.req.Method) && plain(ri.req.URL.Path) && plain(ri.operation) {
		bp := lines.Get().(*[]byte)
		b := appendAccessJSON((*bp)[:0], now, ri, status, now.Sub(start))
		_, _ = a.json.Write(b) // a log line that cannot be written has nowhere to be reported
		*bp = b
		lines.Put(bp)
		return
	}
	// Handed to the handler itself: Logger.LogAttrs would also walk the
	// stack for a source position that rolegate's handlers never print.
	ctx, h := ri.req.Context(), a.logger.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("request_id", ri.id),
		slog.String("method", ri.req.Method),
		slog.String("path", ri.req.URL.Path),
		slog.String("operation", ri.operation),
		slog.Int("status", status),
		slog.Int64("bytes", ri.rec.bytes),
		slog.Duration("duration", now.Sub(start)),
	)
	_ = h.Handle(ctx, r)
}

// appendAccessJSON appends the access line as slog's JSONHandler writes
// it; every string in it must be plain.
func appendAccessJSON(b []byte, now time.Time, ri *requestInfo, status int, d time.Duration) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":"`...)
	b = append(b, ri.id...)
	b = append(b, `","method":"`...)
	b = append(b, ri.req.Method...)
	b = append(b, `","path":"`...)
	b = append(b, ri.req.URL.Path...)
	b = append(b, `","operation":"`...)
	b = append(b, ri.operation...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, ri.rec.bytes, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	return append(b, "}\n"...)
}

// plain reports whether s needs no escaping in JSON: printable ASCII
// without quotes or backslashes. Anything else goes through slog, whose
// escaping is the reference.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// newID returns 96 random bits in hex. An id needs to be unique and
// unguessable, not secret: math/rand/v2's generator (ChaCha8, seeded from
// the OS) is both, without crypto/rand's system call per request.
func newID() string {
	var b [12]byte
	u, v := rand.Uint64(), rand.Uint32()
	for i := range 8 {
		b[i] = byte(u >> (8 * i))
	}
	for i := range 4 {
		b[8+i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// recorder notes the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
