//go:build !linux

package pglocal

import (
	"context"
	"errors"
)

// child is a running postmaster; only Linux can run one (Pdeathsig, flock
// and /proc are needed to manage it safely).
type child struct{}

func (*child) stop(context.Context) error { return nil }

func start(context.Context, Options) (*Server, error) {
	return nil, errors.New("pglocal: the embedded PostgreSQL needs Linux; set DATABASE_URL")
}

// ProcessesIn returns nothing: there is no cluster off Linux.
func ProcessesIn(string) []int { return nil }

// GroupSearchable reports false: no cluster runs off Linux.
func GroupSearchable(string) bool { return false }
