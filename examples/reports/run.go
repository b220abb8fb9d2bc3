package main

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rolegate/rolegate/gen/examples/reports"
	"github.com/rolegate/rolegate/internal/httpserve"
	"github.com/rolegate/rolegate/problem"
	"github.com/rolegate/rolegate/resource"
)

// spec is the service's contract, x-roles included.
//
//go:embed openapi.yaml
var spec []byte

const usage = `usage: reports

Serves the reports example on ADDR (default 127.0.0.1:8081), trusting the
tokens rolegate at ROLEGATE_URL issues for ROLEGATE_AUDIENCE (default
rolegate) unless rolegate revoked them, and the roles that people hold in
rolegate's organizations: it follows rolegate's revocation and memberships
feeds as the machine client ROLEGATE_CLIENT_ID (secret
ROLEGATE_CLIENT_SECRET), which holds the role resource-server.
`

// run is the whole program: main only supplies the process's context,
// arguments, environment and standard streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(stdout, usage)
			return nil
		}
		fmt.Fprint(stderr, usage)
		return errors.New("no arguments are taken")
	}
	rolegateURL := getenv("ROLEGATE_URL")
	if rolegateURL == "" {
		return errors.New("ROLEGATE_URL is unset: set it to rolegate's base URL, such as http://127.0.0.1:8080")
	}
	addr := cmp.Or(getenv("ADDR"), "127.0.0.1:8081")
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	clientID, clientSecret := getenv("ROLEGATE_CLIENT_ID"), getenv("ROLEGATE_CLIENT_SECRET")
	if clientID == "" || clientSecret == "" {
		return errors.New("ROLEGATE_CLIENT_ID and ROLEGATE_CLIENT_SECRET are unset: set them to a machine client's that holds the role resource-server (rolegate client add --name reports --roles resource-server), for rolegate's revocation and memberships feeds")
	}
	server := &Server{}
	strict := reports.NewStrictHandlerWithOptions(server, nil, reports.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Wrap(problem.Invalid, "The request body is malformed.", err))
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, err) // logged; the client hears "Internal error."
		},
	})
	routes := reports.HandlerWithOptions(strict, reports.StdHTTPServerOptions{
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Wrap(problem.Invalid, "A parameter is invalid.", err))
		},
	})
	handler, err := resource.New(ctx, resource.Config{
		RolegateURL:  rolegateURL,
		Audience:     cmp.Or(getenv("ROLEGATE_AUDIENCE"), "rolegate"),
		Spec:         spec,
		Logger:       logger,
		ClientID:     clientID,
		ClientSecret: clientSecret,
	}, routes)
	if err != nil {
		return err
	}
	server.Ready = handler.Ready

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := httpserve.New(handler, httpserve.API, logger)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "rolegate", rolegateURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}
