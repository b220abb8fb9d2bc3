// Command reports is an example service protected by rolegate's access
// tokens with package resource: its own spec (openapi.yaml, embedded) says
// which roles each operation admits, and a token from rolegate, verified
// with rolegate's published keys, says which roles the caller holds.
//
//	ROLEGATE_URL=http://127.0.0.1:8080 ROLEGATE_CLIENT_ID=cl_… ROLEGATE_CLIENT_SECRET=… \
//	ADDR=127.0.0.1:8081 go run ./examples/reports
//
// Settings, from the environment: ROLEGATE_URL (rolegate's base URL,
// required), ROLEGATE_CLIENT_ID and ROLEGATE_CLIENT_SECRET (required: a
// machine client holding the role resource-server, with which it follows
// rolegate's revocation feed and refuses revoked tokens), ADDR (listen
// address, default 127.0.0.1:8081) and ROLEGATE_AUDIENCE (the aud of
// rolegate's tokens, its ROLEGATE_JWT_AUDIENCE; default "rolegate").
// It refuses to start without the feed's snapshot; /readyz answers 503
// while the feed is down.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reports:", err)
		os.Exit(1)
	}
}
