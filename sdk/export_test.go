package sdk

import (
	"context"
	"time"

	"github.com/rolegate/rolegate/gen/api"
)

// StartAt is Start on the clock now, for tests.
func StartAt(ctx context.Context, now func() time.Time, server, email, password string, opts ...api.ClientOption) (*Session, error) {
	return start(ctx, now, server, email, password, nil, opts)
}

// BearerError exposes bearerError to tests.
var BearerError = bearerError
