// Package server assembles rolegate's HTTP stack: request ids and logging,
// panic recovery, and the generated routes over the handlers.
package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/httplog"
	"github.com/rolegate/rolegate/problem"
)

// New returns the HTTP handler that serves the spec's operations with impl.
func New(logger *slog.Logger, impl api.StrictServerInterface) http.Handler {
	mux := http.NewServeMux()
	// Anything the spec does not route is a problem+json 404, not the mux's text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(problem.NotFound, "No such resource."))
	})
	strict := api.NewStrictHandlerWithOptions(impl, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Wrap(problem.Invalid, "The request body is malformed.", err))
		},
		ResponseErrorHandlerFunc: problem.Write,
	})
	h := api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseRouter: mux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, paramError(err))
		},
	})
	return httplog.Middleware(logger, recoverer(h))
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
