package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gate"
	"github.com/rolegate/rolegate/internal/throttle"
	"github.com/rolegate/rolegate/oauth"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/token"
)

// fuzzNow is the one instant the fuzz targets verify tokens at.
var fuzzNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// The callers whose tokens the fuzzer may send, by the index it picks
// (modulo their number); 0 sends its own Authorization value instead.
var fuzzCallers = []*token.Subject{
	nil,
	{UserID: 1, Email: "user@example.com", Roles: []string{"user"}, SessionID: "00000000-0000-4000-8000-000000000001", Version: 1},
	{UserID: 2, Email: "admin@localhost", Roles: []string{"admin", "user"}, SessionID: "00000000-0000-4000-8000-000000000002", Version: 1},
	{ClientID: "c_fuzz", Roles: []string{"system"}},
	{UserID: 3, Email: "nobody@example.com"}, // no role at all
}

// fuzzGate is the gate in front of the project's spec, with a handler that
// reads the body and answers 200 "ok", and the tokens of fuzzCallers.
type fuzzGate struct {
	h      http.Handler
	rules  map[string]*access.Rule // by "METHOD /path", as http.Request.Pattern names them
	tokens []string                // of fuzzCallers, "" for none
}

// reached is what the handler behind the gate saw of a request.
type reached struct {
	r      *http.Request
	caller *token.Claims
	form   url.Values // the form, on an oauth2 operation
	err    error      // reading the body
}

type reachedKey struct{}

func newFuzzGate(tb testing.TB) *fuzzGate {
	tb.Helper()
	spec, err := access.LoadSpec(context.Background(), rolegate.OpenAPIYAML)
	if err != nil {
		tb.Fatal(err)
	}
	tokens, err := token.New(token.Config{
		Secret: []byte("fuzz-secret-fuzz-secret-fuzz-sec"), Issuer: "rolegate", Audience: "rolegate",
		TTL: time.Hour, Now: func() time.Time { return fuzzNow },
	})
	if err != nil {
		tb.Fatal(err)
	}
	fg := &fuzzGate{rules: map[string]*access.Rule{}, tokens: make([]string, len(fuzzCallers))}
	for _, rule := range spec.Policy.Rules {
		fg.rules[rule.Method+" "+rule.Path] = rule
	}
	for i, s := range fuzzCallers {
		if s != nil {
			if fg.tokens[i], _, err = tokens.Issue(*s); err != nil {
				tb.Fatal(err)
			}
		}
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Context().Value(reachedKey{}).(*reached)
		got.r, got.caller = r, access.Caller(r.Context())
		if rule := fg.rules[r.Pattern]; rule != nil && rule.Method == "POST" && strings.HasPrefix(rule.Path, "/token") {
			got.err = r.ParseForm()
			got.form = r.PostForm
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil && got.err == nil {
			got.err = err
		}
		_, _ = io.WriteString(w, "ok")
	})
	if fg.h, err = gate.New(spec, gate.Options{Verifier: tokens, Throttle: passThrottle{}}, next); err != nil {
		tb.Fatal(err)
	}
	return fg
}

// request is a request as a server would hand it to its handler, or nil
// for one no server would (a method, URL or header that cannot be sent).
// target is the request-target (after the leading "/"); a chunked body has
// no Content-Length.
func request(method, target string, header http.Header, body []byte, chunked bool) *http.Request {
	r, err := http.NewRequest(method, "http://rolegate.test/"+target, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	// What the request line would carry, parsed as the server does.
	uri := r.URL.RequestURI()
	if strings.ContainsFunc(uri, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return nil
	}
	if r.URL, err = url.ParseRequestURI(uri); err != nil {
		return nil
	}
	r.RequestURI, r.RemoteAddr = uri, "192.0.2.1:1234"
	for name, vs := range header {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil
			}
			switch http.CanonicalHeaderKey(name) {
			case "Host":
				if !httpguts.ValidHostHeader(v) {
					return nil
				}
				r.Host = v
			case "Content-Length", "Transfer-Encoding":
				// The server's to frame the body: not the gate's.
			default:
				r.Header.Add(name, v)
			}
		}
	}
	if chunked && len(body) > 0 {
		r.ContentLength = -1
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r
}

// serve takes r through the gate and returns the response and what the
// handler behind it saw (nil if it was not reached).
func (fg *fuzzGate) serve(r *http.Request) (*httptest.ResponseRecorder, *reached) {
	got := &reached{}
	r = r.WithContext(context.WithValue(r.Context(), reachedKey{}, got))
	w := httptest.NewRecorder()
	fg.h.ServeHTTP(w, r)
	if got.r == nil {
		return w, nil
	}
	return w, got
}

// FuzzGate takes arbitrary requests, method, path and query, one header,
// Authorization (its own value, or a real token of one of fuzzCallers),
// Content-Type and body, with or without a Content-Length, through the
// whole gate. It must not panic or answer 5xx (the handler behind it never
// does); what it refuses is an RFC 9457 or RFC 6749 JSON body; and what it
// lets through to a secured operation carries a caller its x-roles admit.
// Run: make fuzz.
func FuzzGate(f *testing.F) {
	fg := newFuzzGate(f)
	pdf := multipartBody(f, "file", "a.pdf", []byte("%PDF-1.7\n%%EOF\n"))
	type seed struct {
		method, path, name, value, auth string
		who                             uint8
		contentType                     string
		body                            []byte
		chunked                         bool
	}
	const js = "application/json"
	for _, s := range []seed{
		{"GET", "identify/me", "", "", "", 1, "", nil, false},
		{"GET", "identify/me", "", "", "Bearer x.y.z", 0, "", nil, false},
		{"GET", "identify/me", "", "", "bearer  " + fg.tokens[1], 0, "", nil, false},
		{"GET", "identify/me", "", "", "Basic dTpw", 0, "", nil, false},
		{"GET", "identify/me", "Authorization", "Bearer x", "", 1, "", nil, false},
		{"GET", "identify/me", "", "", "", 4, "", nil, false},
		{"GET", "notes?limit=5&cursor=azAuMQ&owner_id=2", "", "", "", 2, "", nil, false},
		{"GET", "notes?limit=x&cursor=%ff&owner_id=0", "", "", "", 1, "", nil, false},
		{"GET", "notes?%00=1", "", "", "", 1, "", nil, false},
		{"POST", "notes", "", "", "", 1, js, []byte(`{"document_src":"a.pdf","title":"t","body":"b"}`), false},
		{"POST", "notes", "", "", "", 1, js, []byte(`{"document_src":"a.pdf","title":"t\u0000","body":"b"}`), true},
		{"POST", "notes", "", "", "", 1, js, []byte(`{"title":"t"} {}`), false},
		{"POST", "notes", "", "", "", 1, js, []byte("{\"title\":\"\xff\"}"), false},
		{"POST", "notes", "", "", "", 1, "text/plain", []byte(`{}`), false},
		{"POST", "notes", "", "", "", 1, js + "; charset=utf-8", bytes.Repeat([]byte("["), 1<<20+1), true},
		{"PATCH", "notes/1", "", "", "", 2, "application/merge-patch+json", []byte(`{"title":null}`), false},
		{"DELETE", "notes/99999999999999999999", "", "", "", 1, "", nil, false},
		{"GET", "notes/%2e%2e", "", "", "", 1, "", nil, false},
		{"GET", "notes/document/src/a%2Fb%00", "", "", "", 1, "", nil, false},
		{"POST", "documents", "", "", "", 1, pdf.contentType, pdf.body, false},
		{"POST", "documents", "", "", "", 3, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF\r\n--x--"), true},
		{"POST", "documents", "", "", "", 1, "multipart/form-data", []byte("--\r\n"), false},
		{"POST", "documents/1/split", "", "", "", 3, js, []byte(`{"ranges":["1-3","0","3-1","99999999999"]}`), false},
		{"POST", "documents/1/split", "", "", "", 1, "", nil, false},
		{"PUT", "users/2/roles", "", "", "", 2, js, []byte(`{"roles":["admin",""]}`), false},
		{"POST", "users", "", "", "", 2, js, []byte(`{"email":"K\u212aelvin@b\u00fccher.example","password":"123456789012","roles":["user"]}`), false},
		{"POST", "users", "", "", "", 2, js, []byte(`{"email":"a@[127.0.0.1]","password":"x"}`), false},
		{"POST", "clients", "", "", "", 2, js, []byte(`{"name":"n","roles":["system"]}`), false},
		{"DELETE", "roles/%ff", "", "", "", 2, "", nil, false},
		{"GET", "users?role=admin&limit=201", "", "", "", 1, "", nil, false},
		{"POST", "token", "", "", "", 0, "application/x-www-form-urlencoded", []byte("grant_type=password&username=a&password=b"), false},
		{"POST", "token?x=1", "", "", "", 0, "application/x-www-form-urlencoded", nil, false},
		{"POST", "token/revoke", "", "", "", 1, "application/x-www-form-urlencoded", []byte("token=a&token=b"), false},
		{"GET", "token", "", "", "", 0, "", nil, false},
		{"OPTIONS", "notes", "Origin", "https://example.com", "", 0, "", nil, false},
		{"HEAD", "healthz", "", "", "", 0, "", nil, false},
		{"GET", "docs/..%2f..%2fetc%2fpasswd", "", "", "", 0, "", nil, false},
		{"GET", ".well-known/jwks.json", "Accept", "*/*", "", 0, "", nil, false},
		{"GET", "openapi.json?%zz", "", "", "", 0, "", nil, false},
		{"CONNECT", "notes", "", "", "", 1, "", nil, false},
		{"BREW", "", "", "", "", 0, "", nil, false},
		{"GET", "/notes", "", "", "", 1, "", nil, false},
		{"GET", "a/../notes", "", "", "", 1, "", nil, false},
		{"GET", "nope", "Host", "other.example", "", 0, "", nil, false},
	} {
		f.Add(s.method, s.path, s.name, s.value, s.auth, s.who, s.contentType, s.body, s.chunked)
	}
	f.Fuzz(func(t *testing.T, method, path, name, value, auth string, who uint8, contentType string, body []byte, chunked bool) {
		h := http.Header{}
		if name != "" {
			h.Add(name, value)
		}
		if tok := fg.tokens[int(who)%len(fg.tokens)]; tok != "" {
			h.Add("Authorization", "Bearer "+tok)
		} else if auth != "" {
			h.Add("Authorization", auth)
		}
		if contentType != "" {
			h.Add("Content-Type", contentType)
		}
		r := request(method, path, h, body, chunked)
		if r == nil {
			return
		}
		w, got := fg.serve(r)
		if w.Code >= 500 {
			t.Fatalf("%s %s answered %d: %s", r.Method, r.RequestURI, w.Code, w.Body)
		}
		if got == nil {
			if w.Code >= 400 {
				refusal(t, r, w)
			}
			return
		}
		rule := fg.rules[got.r.Pattern]
		switch {
		case rule == nil:
			t.Fatalf("%s %s reached the handler as %q, no operation of the spec", r.Method, r.RequestURI, got.r.Pattern)
		case rule.Public:
		case got.caller == nil:
			t.Fatalf("%s %s reached secured %s with no caller", r.Method, r.RequestURI, rule.OperationID)
		case !rule.Admits(got.caller.Roles):
			t.Fatalf("%s %s reached %s with roles %q", r.Method, r.RequestURI, rule.OperationID, got.caller.Roles)
		case !rule.AdmitsCaller(got.caller.ClientID != ""):
			t.Fatalf("%s %s reached %s, for user accounts only, as client %q", r.Method, r.RequestURI, rule.OperationID, got.caller.ClientID)
		}
	})
}

// refusal checks that w is one of the gate's refusals of r: a problem
// document, or on an oauth2 operation an RFC 6749 error.
func refusal(t *testing.T, r *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	switch ct := w.Header().Get("Content-Type"); ct {
	case problem.ContentType:
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Title == "" {
			t.Fatalf("%s %s answered %d with problem %q (%v)", r.Method, r.RequestURI, w.Code, w.Body, err)
		}
	case "application/json":
		oauthError(t, r, w)
	default:
		t.Fatalf("%s %s answered %d with %q: %q", r.Method, r.RequestURI, w.Code, ct, w.Body)
	}
}

// oauthError checks that w is an RFC 6749 section 5.2 error.
func oauthError(t *testing.T, r *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s %s answered %d with %q: %v", r.Method, r.RequestURI, w.Code, w.Body, err)
	}
	code, _ := e["error"].(string)
	desc, _ := e["error_description"].(string)
	switch {
	case w.Header().Get("Content-Type") != "application/json", w.Header().Get("Cache-Control") != "no-store":
		t.Fatalf("%s %s answered %d with headers %v", r.Method, r.RequestURI, w.Code, w.Header())
	case code != oauth.InvalidRequest || desc == "" || len(e) != 2:
		t.Fatalf("%s %s answered %d with %q; want invalid_request and a description alone", r.Method, r.RequestURI, w.Code, w.Body)
	}
}

// FuzzTokenForm posts arbitrary forms (and query strings, and media types)
// to POST /token through the gate. It must not panic; it passes the
// request on only with no query, a form that parses, has no repeated
// parameter and holds valid text within the spec's lengths; anything else
// it answers 400 or 413 with an RFC 6749 invalid_request. Run: make fuzz.
func FuzzTokenForm(f *testing.F) {
	fg := newFuzzGate(f)
	const form = "application/x-www-form-urlencoded"
	for _, s := range []struct {
		query, contentType string
		body               []byte
		chunked            bool
	}{
		{"", form, []byte("grant_type=password&username=admin%40localhost&password=correct+horse"), false},
		{"", form, []byte("grant_type=refresh_token&refresh_token=3q2-7wE4xLzJ0vqH5bM1cN8dKf6gTrYs2uVw9XaZb0c"), false},
		{"", form, []byte("grant_type=client_credentials&client_id=c&client_secret=s&scope=system+user"), false},
		{"", form + "; charset=utf-8", []byte("grant_type=password&grant_type=password"), false},
		{"", form, []byte("username=%ff&password=%00"), false},
		{"", form, []byte("username=\xff"), false},
		{"", form, []byte("a=%zz"), false},
		{"", form, []byte("a;b=c"), false},
		{"", form, []byte("=&&=&"), false},
		{"", form, []byte("grant_type=" + strings.Repeat("x", 65)), false},
		{"", form, []byte("password=" + strings.Repeat("é", 1024)), false},
		{"", form, bytes.Repeat([]byte("a"), 8193), false},
		{"", form, bytes.Repeat([]byte("a"), 8193), true},
		{"", form, nil, false},
		{"grant_type=password", form, []byte("grant_type=password"), false},
		{"?", form, nil, false},
		{"", "application/json", []byte(`{"grant_type":"password"}`), false},
		{"", "multipart/form-data; boundary=x", []byte("--x--"), false},
		{"", "", []byte("grant_type=password"), false},
		{"", "text/plain", []byte("grant_type=password"), true},
	} {
		f.Add(s.query, s.contentType, s.body, s.chunked)
	}
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte, chunked bool) {
		target := "token"
		if query != "" {
			target += "?" + query
		}
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		r := request("POST", target, h, body, chunked)
		if r == nil {
			return
		}
		w, got := fg.serve(r)
		if got == nil {
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("POST %s (%q, %q) answered %d: %s", r.RequestURI, contentType, body, w.Code, w.Body)
			}
			oauthError(t, r, w)
			return
		}
		switch {
		case got.r.Pattern != "POST /token":
			t.Fatalf("POST %s reached %q", r.RequestURI, got.r.Pattern)
		case got.r.URL.RawQuery != "":
			t.Fatalf("POST %s passed with a query", r.RequestURI)
		case got.err != nil:
			t.Fatalf("POST %s (%q) passed, but its form does not read: %v", r.RequestURI, body, got.err)
		}
		maxLen := map[string]int{"grant_type": 64, "username": 254, "password": 1024, "scope": 1024, "refresh_token": 512, "client_id": 64, "client_secret": 256}
		for k, vs := range got.form {
			if len(vs) != 1 {
				t.Fatalf("POST /token (%q) passed with %s repeated", body, k)
			}
			if !validText(k) || !validText(vs[0]) {
				t.Fatalf("POST /token (%q) passed with %q=%q", body, k, vs[0])
			}
			if n, ok := maxLen[k]; ok && utf8.RuneCountInString(vs[0]) > n {
				t.Fatalf("POST /token (%q) passed with %s of %d characters, over %d", body, k, utf8.RuneCountInString(vs[0]), n)
			}
		}
	})
}

func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// upload is a multipart/form-data body and its Content-Type.
type upload struct {
	contentType string
	body        []byte
}

// multipartBody is the upload of one file.
func multipartBody(tb testing.TB, field, filename string, content []byte) upload {
	tb.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = fw.Write(content)
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return upload{mw.FormDataContentType(), b.Bytes()}
}

// passThrottle is a gate.Throttler that never refuses, so that the fuzzed
// requests of operations with x-rate-limit go through the gate's
// throttling (the keys it derives from a form or Basic credentials) without
// changing their answers.
type passThrottle struct{}

func (passThrottle) Network(addr string) string { return addr }

func (passThrottle) Reserve(ctx context.Context, keys []throttle.Key) (throttle.Reservation, time.Duration, error) {
	for _, k := range keys {
		if !utf8.ValidString(k.Name) || strings.ContainsRune(k.Name, 0) || len(k.Name) > 400 {
			panic("throttle key is not at most 400 bytes of valid UTF-8 without NUL: " + k.Name)
		}
	}
	return throttle.Reservation{}, 0, nil
}

func (passThrottle) Settle(context.Context, throttle.Reservation, int) error { return nil }
