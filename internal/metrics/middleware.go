package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/rolegate/rolegate/internal/httplog"
	"github.com/rolegate/rolegate/oauth"
)

// Middleware counts every request by operation id and status, times it by
// operation id, counts 429s as throttled, and counts the token endpoint's
// answers as logins by outcome. It must run inside httplog.Middleware,
// whose per-request record the gate names the operation in, and outside
// the gate. It allocates one small response recorder per request, and
// reads a response body only for an error of the token endpoint (at most
// maxSniff bytes of it).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, ctx: r.Context()}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
		}
		m.observe(httplog.Operation(r.Context()), status, time.Since(start), rec.body)
	})
}

// maxSniff bounds the bytes of a token endpoint error kept to find its
// error code: such bodies are a code and a sentence.
const maxSniff = 1024

// recorder notes the status of a response and, for an error of the token
// endpoint that names its code in the body, the start of the body.
type recorder struct {
	http.ResponseWriter
	ctx    context.Context
	status int
	sniff  bool
	body   []byte
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx are not the answer
		r.status = code
		r.sniff = (code == http.StatusBadRequest || code == http.StatusUnauthorized) &&
			httplog.Operation(r.ctx) == LoginOperation
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.sniff && len(r.body) < maxSniff {
		r.body = append(r.body, b[:min(len(b), maxSniff-len(r.body))]...)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// loginOutcome is the outcome label of a token endpoint answer: its status
// says it, except for 400 and 401, whose RFC 6749 body names the error.
func loginOutcome(status int, body []byte) string {
	switch {
	case status < 300:
		return OutcomeSuccess
	case status == http.StatusTooManyRequests:
		return OutcomeThrottled
	case status == http.StatusServiceUnavailable:
		return OutcomeUnavailable
	case status >= 500:
		return OutcomeError
	}
	// Only listed codes become labels, so that the label set stays bounded.
	if code := errorCode(body); slices.Contains(oauthCodes, code) {
		return code
	}
	if status == http.StatusUnauthorized {
		return oauth.InvalidClient
	}
	return oauth.InvalidRequest
}

// errorCode returns the "error" member of an RFC 6749 error body, read as
// a stream so that a body cut at maxSniff still gives it (oauth.Write puts
// it first), or "".
func errorCode(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "error" {
			v, _ := dec.Token()
			code, _ := v.(string)
			return code
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
