package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// response is what a test looks at in an HTTP response.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request; header values are set as given. The response is
// validated against the spec.
func do(t *testing.T, method, u string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v // net/http sends req.Host, never a Host in Header
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := apitest.ContractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func form(kv ...string) io.Reader {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return strings.NewReader(v.Encode())
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// assertProblem checks an RFC 9457 body with the given status.
// Its type is about:blank, unless a problem type of rolegate's own says more.
func assertProblem(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %s, want %d application/problem+json", r.status, r.header.Get("Content-Type"), r.body, status)
	}
	m := r.json(t)
	if typ, _ := m["type"].(string); m["status"] != float64(status) || m["title"] == "" || typ == "" || m["request_id"] == nil {
		t.Errorf("problem body %v lacks status/title/type/request_id", m)
	}
	return m
}
