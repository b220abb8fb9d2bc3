// Package server assembles rolegate's HTTP stack: request ids and logging,
// panic recovery, the access middleware (routing, tokens, x-roles,
// validation), and the generated routes over the handlers.
package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/httplog"
	"github.com/rolegate/rolegate/problem"
)

// Deps are the server's dependencies.
type Deps struct {
	Logger   *slog.Logger
	Doc      *openapi3.T
	Policy   *access.Policy
	Verifier access.Verifier
	// MaxBodyBytes bounds bodies where the spec declares no limit.
	MaxBodyBytes int64
	// MaxUploadBytes bounds uploads.
	MaxUploadBytes int64
	// CORSOrigins are the browser origins allowed; empty disables CORS.
	CORSOrigins []string
	Impl        api.StrictServerInterface
}

// New returns the HTTP handler that serves the spec's operations.
func New(d Deps) (http.Handler, error) {
	strict := api.NewStrictHandlerWithOptions(d.Impl, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Wrap(problem.Invalid, "The request body is malformed.", err))
		},
		ResponseErrorHandlerFunc: errorResponse,
	})
	routes := api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, paramError(err))
		},
	})
	guarded, err := access.Middleware(d.Doc, d.Policy, access.Options{
		Verifier:       d.Verifier,
		MaxBodyBytes:   d.MaxBodyBytes,
		MaxUploadBytes: d.MaxUploadBytes,
	}, routes)
	if err != nil {
		return nil, err
	}
	return httplog.Middleware(d.Logger, recoverer(cors(d.CORSOrigins, guarded))), nil
}

// paramError names the parameter that failed to bind without passing on the
// parser's own text.
func paramError(err error) error {
	var (
		unmarshal *api.UnmarshalingParamError
		required  *api.RequiredParamError
		format    *api.InvalidParamFormatError
		name      string
	)
	switch {
	case errors.As(err, &unmarshal):
		name = unmarshal.ParamName
	case errors.As(err, &required):
		name = required.ParamName
	case errors.As(err, &format):
		name = format.ParamName
	default:
		return problem.Wrap(problem.Invalid, "A parameter is invalid.", err)
	}
	return problem.Wrap(problem.Invalid, "Parameter "+name+" is invalid.", err)
}

// recoverer turns a panic in a handler into a logged 500, keeping the
// process alive; http.ErrAbortHandler keeps its meaning.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				httplog.Logger(r.Context()).Error("panic", "value", v)
				problem.Write(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
