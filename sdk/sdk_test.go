package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/sdk"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestLogin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "sdk@example.com", "user")
	ctx := context.Background()
	httpc := api.WithHTTPClient(apitest.HTTPClient(t))

	c, err := sdk.Login(ctx, e.URL, u.Email, u.Password, httpc)
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil || me.JSON200.Email == nil || *me.JSON200.Email != u.Email {
		t.Fatalf("identify/me through the SDK: %v %s", err, me.Body)
	}

	_, err = sdk.Login(ctx, e.URL, u.Email, "wrong password", httpc)
	var le *sdk.LoginError
	if !errors.As(err, &le) || le.Status != 400 || le.Code != "invalid_grant" {
		t.Fatalf("wrong password: err = %v, want a LoginError invalid_grant", err)
	}
}

// recorder is the transport of a session's HTTP client in tests: it logs
// every exchange ("GET /identify/me 401", "POST /token refresh_token
// 200") and keeps the tokens /token answered, over the contract-checking
// transport of apitest.HTTPClient.
type recorder struct {
	base http.RoundTripper
	// failRefreshes is how many refresh_token grants to fail with a
	// network error, unsent.
	failRefreshes atomic.Int32

	mu        sync.Mutex
	log       []string
	bearers   []string // the Authorization header of every request
	access    []string // access tokens /token answered, in order
	refresh   []string // refresh tokens /token answered
	expiresIn int      // of the last answer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	entry := req.Method + " " + req.URL.Path
	if req.URL.Path == "/token" {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		entry += " " + form.Get("grant_type")
		if form.Get("grant_type") == "refresh_token" && r.failRefreshes.Add(-1) >= 0 {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.log = append(r.log, entry+" unsent")
			return nil, errors.New("recorder: the network is down")
		}
	}
	r.mu.Lock()
	r.bearers = append(r.bearers, req.Header.Get("Authorization"))
	r.mu.Unlock()
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("%s %d", entry, resp.StatusCode))
	if req.URL.Path == "/token" && resp.StatusCode == 200 {
		b, err := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var tok api.Token
		if err != nil || json.Unmarshal(b, &tok) != nil || tok.RefreshToken == nil {
			return nil, fmt.Errorf("recorder: /token answered %s (%v)", b, err)
		}
		r.access, r.refresh = append(r.access, tok.AccessToken), append(r.refresh, *tok.RefreshToken)
		r.expiresIn = tok.ExpiresIn
	}
	return resp, nil
}

// take returns the log so far and starts a new one.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	log := r.log
	r.log = nil
	return log
}

func (r *recorder) lastBearer() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bearers[len(r.bearers)-1]
}

// clock is the session's clock in tests; they move it instead of sleeping.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is a server with a user logged in through a session, and an
// administrator's client.
type fixture struct {
	e     *apitest.Env
	user  apitest.User
	s     *sdk.Session
	rec   *recorder
	clock *clock
	admin *api.ClientWithResponses
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{e: apitest.New(t), clock: &clock{}}
	f.clock.ns.Store(time.Now().UnixNano())
	f.user = f.e.CreateUser(t, "session@example.com", "user")
	f.admin = f.e.Client(t, f.e.Token(t, f.e.CreateUser(t, "admin@example.com", "admin")))
	f.rec = &recorder{base: apitest.HTTPClient(t).Transport}
	var err error
	f.s, err = sdk.StartAt(context.Background(), f.clock.Now, f.e.URL, f.user.Email, f.user.Password,
		api.WithHTTPClient(&http.Client{Transport: f.rec}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POST /token password 200"}, f.rec.take()); diff != "" {
		t.Fatalf("login (-want +got):\n%s", diff)
	}
	return f
}

// me is GET /identify/me through the session.
func (f *fixture) me(t *testing.T) *api.GetMeResponse {
	t.Helper()
	r, err := f.s.Client().GetMeWithResponse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) setRoles(t *testing.T, roles ...string) {
	t.Helper()
	r, err := f.admin.SetUserRolesWithResponse(context.Background(), f.user.ID, api.SetUserRolesJSONRequestBody{Roles: roles})
	if err != nil || r.StatusCode() != 200 {
		t.Fatalf("PUT /users/%d/roles: %v %s", f.user.ID, err, r.Body)
	}
}

func rolesOf(t *testing.T, r *api.GetMeResponse) []string {
	t.Helper()
	if r.JSON200 == nil {
		t.Fatalf("GET /identify/me = %d %s", r.StatusCode(), r.Body)
	}
	return r.JSON200.Roles
}

// A change of roles kills the access token; the session refreshes once,
// retries, and the caller sees the new roles, for a request with a body
// too.
func TestSessionRenewsARefusedToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if diff := cmp.Diff([]string{"user"}, rolesOf(t, f.me(t))); diff != "" {
		t.Fatalf("roles before (-want +got):\n%s", diff)
	}
	f.rec.take()

	f.setRoles(t, "user", "system")
	if diff := cmp.Diff([]string{"system", "user"}, rolesOf(t, f.me(t))); diff != "" {
		t.Errorf("roles after the change (-want +got):\n%s", diff)
	}
	want := []string{"GET /identify/me 401", "POST /token refresh_token 200", "GET /identify/me 200"}
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	f.setRoles(t, "user")
	note, err := f.s.Client().CreateNoteWithResponse(ctx, api.CreateNoteJSONRequestBody{DocumentSrc: "a.pdf", Title: "retried", Body: "with its body"})
	if err != nil || note.JSON201 == nil || note.JSON201.Body != "with its body" {
		t.Fatalf("POST /notes after a change of roles: %v %s", err, note.Body)
	}
	want = []string{"POST /notes 401", "POST /token refresh_token 200", "POST /notes 201"}
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// A body that cannot be sent again (no GetBody): the 401 is the answer.
	f.setRoles(t, "user", "system")
	req, _ := http.NewRequest("POST", f.e.URL+"/notes", io.NopCloser(strings.NewReader(`{"document_src":"a.pdf","title":"once","body":""}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.s.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if diff := cmp.Diff([]string{"POST /notes 401"}, f.rec.take()); diff != "" {
		t.Errorf("a request without GetBody (-want +got):\n%s", diff)
	}
}

// The session renews its access token shortly before it expires, by its own
// clock, without a refused request.
func TestSessionRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	life := time.Duration(f.rec.expiresIn) * time.Second
	if life < time.Minute {
		t.Fatalf("expires_in = %v, want at least a minute", life)
	}
	first := f.rec.access[0]

	f.clock.Advance(life - 31*time.Second)
	rolesOf(t, f.me(t))
	if got := f.rec.lastBearer(); got != "Bearer "+first {
		t.Errorf("31 s before expiry the session sent %q, want its first token", got)
	}
	f.clock.Advance(2 * time.Second)
	rolesOf(t, f.me(t))
	rolesOf(t, f.me(t))
	want := []string{"GET /identify/me 200", "POST /token refresh_token 200", "GET /identify/me 200", "GET /identify/me 200"}
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got := f.rec.lastBearer(); len(f.rec.access) != 2 || got != "Bearer "+f.rec.access[1] {
		t.Errorf("after the renewal the session sent %q, want the new token", got)
	}
}

// A refresh that fails for want of an answer keeps the tokens: the request
// gets its 401, and the next one refreshes.
func TestSessionRenewsAfterAFailedRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.setRoles(t, "user", "system")
	f.rec.failRefreshes.Store(1)
	if r := f.me(t); r.ApplicationproblemJSON401 == nil {
		t.Errorf("with the refresh failing: %d %s, want the 401", r.StatusCode(), r.Body)
	}
	if diff := cmp.Diff([]string{"system", "user"}, rolesOf(t, f.me(t))); diff != "" {
		t.Errorf("roles once the refresh works (-want +got):\n%s", diff)
	}
	want := []string{
		"GET /identify/me 401", "POST /token refresh_token unsent",
		"GET /identify/me 401", "POST /token refresh_token 200", "GET /identify/me 200",
	}
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// meBurst sends n GET /identify/me at once through the session.
func (f *fixture) meBurst(t *testing.T, n int) []*api.GetMeResponse {
	t.Helper()
	got := make([]*api.GetMeResponse, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			<-start
			r, err := f.s.Client().GetMeWithResponse(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r
		})
	}
	close(start)
	wg.Wait()
	return got
}

func count(log []string, entry string) int {
	n := 0
	for _, l := range log {
		if l == entry {
			n++
		}
	}
	return n
}

// Requests refused at once share one refresh.
func TestSessionRenewsOnceForABurst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.setRoles(t, "user", "system")
	for i, r := range f.meBurst(t, 20) {
		if r != nil && r.JSON200 == nil {
			t.Errorf("request %d: %d %s", i, r.StatusCode(), r.Body)
		}
	}
	log := f.rec.take()
	if n := count(log, "POST /token refresh_token 200"); n != 1 || count(log, "GET /identify/me 200") != 20 {
		t.Errorf("%d refreshes, want 1, and 20 answers; requests: %q", n, log)
	}
}

// When the session has ended elsewhere, the refresh is refused: the burst
// that found out gets its 401s after one refresh, and later requests go
// without a token and do not refresh.
func TestSessionEndedElsewhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r, err := f.admin.EndUserSessionsWithResponse(context.Background(), f.user.ID); err != nil || r.StatusCode() != 204 {
		t.Fatalf("DELETE /users/%d/sessions: %v %s", f.user.ID, err, r.Body)
	}
	// A request sent once the refresh was refused goes without a token: a
	// 401 too, without invalid_token.
	for i, r := range f.meBurst(t, 20) {
		if r != nil && r.ApplicationproblemJSON401 == nil {
			t.Errorf("request %d: %d %s, want the server's 401", i, r.StatusCode(), r.Body)
		}
	}
	log := f.rec.take()
	if n := count(log, "POST /token refresh_token 400"); n != 1 || count(log, "GET /identify/me 401") != 20 || len(log) != 21 {
		t.Errorf("%d refreshes, want 1, and 20 refusals; requests: %q", n, log)
	}

	for range 2 {
		if r := f.me(t); r.ApplicationproblemJSON401 == nil || strings.Contains(r.HTTPResponse.Header.Get("WWW-Authenticate"), "error=") {
			t.Errorf("after the session ended: %d %v %s, want 401 without a token", r.StatusCode(), r.HTTPResponse.Header, r.Body)
		}
		if got := f.rec.lastBearer(); got != "" {
			t.Errorf("after the session ended, a request carried %q", got)
		}
	}
	if diff := cmp.Diff([]string{"GET /identify/me 401", "GET /identify/me 401"}, f.rec.take()); diff != "" {
		t.Errorf("requests after the session ended (-want +got):\n%s", diff)
	}
	if err := f.s.Logout(context.Background()); err != nil || len(f.rec.take()) != 0 {
		t.Errorf("Logout of an ended session = %v, want nil and no request", err)
	}
}

// Logout ends the session on the server: both of its tokens are refused.
func TestSessionLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.setRoles(t, "user", "system")
	rolesOf(t, f.me(t)) // a refresh: the tokens to revoke are the new ones
	access, refresh := f.rec.access[1], f.rec.refresh[1]
	f.rec.take()

	if err := f.s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POST /token/revoke 200"}, f.rec.take()); diff != "" {
		t.Errorf("logout (-want +got):\n%s", diff)
	}

	raw := apitest.ContractClient(t)
	req, _ := http.NewRequest("GET", f.e.URL+"/identify/me", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("the old access token after logout: %d %v, want 401 invalid_token", resp.StatusCode, resp.Header)
	}
	resp, err = raw.PostForm(f.e.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if err != nil {
		t.Fatal(err)
	}
	var oauthErr api.OAuthError
	err = json.NewDecoder(resp.Body).Decode(&oauthErr)
	resp.Body.Close()
	if resp.StatusCode != 400 || err != nil || oauthErr.Error != "invalid_grant" {
		t.Errorf("the old refresh token after logout: %d %+v (%v), want 400 invalid_grant", resp.StatusCode, oauthErr, err)
	}

	// The session forgot its tokens: it sends none, and has nothing to renew.
	if r := f.me(t); r.StatusCode() != 401 || f.rec.lastBearer() != "" {
		t.Errorf("after logout: %d, Authorization %q; want 401 without a token", r.StatusCode(), f.rec.lastBearer())
	}
	if err := f.s.Logout(ctx); err != nil {
		t.Errorf("second Logout = %v", err)
	}
	if diff := cmp.Diff([]string{"GET /identify/me 401"}, f.rec.take()); diff != "" {
		t.Errorf("requests after logout (-want +got):\n%s", diff)
	}
}

// The access token goes to the server only: not to another host, nor to
// /token and /token/revoke.
func TestSessionSendsItsTokenToTheServerOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	req, _ := http.NewRequest("GET", other.URL+"/elsewhere", nil)
	req.Header.Set("Authorization", "Basic mine")
	resp, err := f.s.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Load() != "Basic mine" {
		t.Errorf("another host received Authorization %q, want the request's own", got.Load())
	}

	grant := "password"
	r, err := f.s.Client().CreateTokenWithFormdataBodyWithResponse(context.Background(), api.CreateTokenFormdataRequestBody{
		GrantType: &grant, Username: &f.user.Email, Password: &f.user.Password,
	})
	if err != nil || r.JSON200 == nil {
		t.Fatalf("POST /token through the session: %v %s", err, r.Body)
	}
	if got := f.rec.lastBearer(); got != "" {
		t.Errorf("POST /token through the session carried Authorization %q", got)
	}
}

func TestBearerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header []string
		want   string
	}{
		{[]string{`Bearer realm="rolegate", error="invalid_token"`}, "invalid_token"},
		{[]string{`Bearer realm="rolegate"`}, ""},
		{[]string{`Bearer realm="rolegate", error="insufficient_scope"`}, "insufficient_scope"},
		{[]string{`bearer error=invalid_token, error_description="a \"quoted\" text"`}, "invalid_token"},
		{[]string{`Bearer error_description="error=\"invalid_token\"", error="expired"`}, "expired"},
		{[]string{`Basic realm="x", error="invalid_token"`}, ""},
		{[]string{`Basic realm="x"`, `Bearer realm="y", error="invalid_token"`}, "invalid_token"},
		{[]string{`Newauth abc==, Bearer error="invalid_token"`}, "invalid_token"},
		{[]string{`Bearer error="invalid_token`}, "invalid_token"},
		{[]string{`Bearer realm="x", Basic error="invalid_token"`}, ""},
		{nil, ""},
		{[]string{`===, "`}, ""},
	}
	for _, tt := range tests {
		if got := sdk.BearerError(tt.header); got != tt.want {
			t.Errorf("bearerError(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}
