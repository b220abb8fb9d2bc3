// Package httplog gives every HTTP request an id and a logger, and logs one
// line per request when it ends.
package httplog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"time"
)

type ctxKey struct{}

type requestInfo struct {
	id     string
	logger *slog.Logger
	req    *http.Request
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
func Client(ctx context.Context) (userAgent, addr string) {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return "", ""
	}
	addr = ri.req.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return ri.req.UserAgent(), addr
}

// Origin returns the scheme and host the request ctx belongs to was sent
// to, such as "http://127.0.0.1:8080", or "" outside a request.
func Origin(ctx context.Context) string {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return ""
	}
	scheme := "http"
	if ri.req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + ri.req.Host
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

// Logger returns the request's logger, which carries its id, or
// slog.Default() outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if ri, ok := ctx.Value(ctxKey{}).(*requestInfo); ok {
		return ri.logger
	}
	return slog.Default()
}

// Middleware gives each request a fresh random id (a client-sent
// X-Request-Id is not trusted: it would let callers forge log lines), sends
// it back as X-Request-Id, and logs method, path, status, size and duration
// when the handler returns. The query string is not logged: it may hold
// secrets.
func Middleware(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newID()
		ri := &requestInfo{id: id, logger: logger.With("request_id", id), req: r}
		w.Header().Set(HeaderRequestID, id)
		// No response is to be sniffed into another type than it declares.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rec := &recorder{ResponseWriter: w}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			ri.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
			)
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri)))
	})
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
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
