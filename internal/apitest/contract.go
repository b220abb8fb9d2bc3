package apitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
)

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

func router() (routers.Router, error) {
	contractOnce.Do(func() {
		var spec *access.Spec
		if spec, contractErr = access.LoadSpec(context.Background(), rolegate.OpenAPIYAML); contractErr == nil {
			contractRouter, contractErr = gorillamux.NewRouter(spec.Doc)
		}
	})
	return contractRouter, contractErr
}

// contract is an http.RoundTripper that validates every response against
// api/openapi.yaml (status, content type, headers, body) and, when
// requests is set, every request too. A violation fails the test that sent
// the request. Requests to paths or methods the spec does not have (tests
// of the 404 and 405 answers) have no contract and pass through.
type contract struct {
	tb       testing.TB
	requests bool
	base     http.RoundTripper
}

// ContractClient returns an HTTP client that validates every response
// against the spec and fails tb on a violation. It does not validate
// requests, so that tests may send bad ones on purpose.
func ContractClient(tb testing.TB) *http.Client {
	return &http.Client{Transport: &contract{tb: tb, base: http.DefaultTransport}}
}

var acceptAnyAuth = &openapi3filter.Options{
	// The server checks tokens; the contract is about shapes.
	AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	r, err := router()
	if err != nil {
		c.tb.Errorf("contract: loading the spec: %v", err)
		return c.base.RoundTrip(req)
	}
	route, params, err := r.FindRoute(req)
	if err != nil {
		return c.base.RoundTrip(req) // not in the spec: nothing to check
	}
	var reqBody []byte
	if req.Body != nil {
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	in := &openapi3filter.RequestValidationInput{Request: req.Clone(req.Context()), PathParams: params, Route: route, Options: acceptAnyAuth}
	in.Request.Body = io.NopCloser(bytes.NewReader(reqBody))
	if c.requests {
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			c.tb.Errorf("contract: request %s %s violates the spec: %v", req.Method, req.URL.Path, err)
		}
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// A stream does not end by itself: its status and headers are
		// checked, its events are the test's to read.
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true},
		}
		if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
			c.tb.Errorf("contract: response %d to %s %s violates the spec: %v", resp.StatusCode, req.Method, req.URL.Path, err)
		}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return resp, err
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		c.tb.Errorf("contract: response %d to %s %s violates the spec: %v\nbody: %.300s", resp.StatusCode, req.Method, req.URL.Path, err, body)
	}
	return resp, nil
}
