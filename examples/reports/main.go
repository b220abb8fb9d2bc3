// Command reports is an example service protected by rolegate's access
// tokens with package resource: its own spec (openapi.yaml, embedded) says
// which roles each operation admits, and a token from rolegate, verified
// with rolegate's published keys, says which roles the caller holds.
//
//	ROLEGATE_URL=http://127.0.0.1:8080 ADDR=127.0.0.1:8081 go run ./examples/reports
//
// Settings, from the environment: ROLEGATE_URL (rolegate's base URL,
// required), ADDR (listen address, default 127.0.0.1:8081) and
// ROLEGATE_AUDIENCE (the aud of rolegate's tokens, its
// ROLEGATE_JWT_AUDIENCE; default "rolegate").
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
