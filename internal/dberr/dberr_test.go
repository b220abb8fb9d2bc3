package dberr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/rolegate/rolegate/internal/dberr"
	"github.com/rolegate/rolegate/problem"
)

// TestTranslateStatus pins the status each class of database error gets,
// and that every 503 carries Retry-After.
func TestTranslateStatus(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want int // 0: passed on as it is, an internal error
	}{
		{"no row, expected", pgx.ErrNoRows, http.StatusNotFound},
		{"connection refused", fmt.Errorf("acquire: %w", refused), http.StatusServiceUnavailable},
		{"cannot connect", &pgconn.ConnectError{}, http.StatusServiceUnavailable},
		{"a deadline: a database that hangs", fmt.Errorf("insert: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{"closed pool", puddle.ErrClosedPool, http.StatusServiceUnavailable},
		{"connection dropped mid-statement", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), http.StatusServiceUnavailable},
		{"connection closed by the server", fmt.Errorf("read: %w", io.EOF), http.StatusServiceUnavailable},
		{"connection closed", fmt.Errorf("write: %w", net.ErrClosed), http.StatusServiceUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, http.StatusServiceUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, http.StatusServiceUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, http.StatusServiceUnavailable},
		{"database gone", &pgconn.PgError{Code: "3D000"}, http.StatusServiceUnavailable},
		{"unique violation", &pgconn.PgError{Code: "23505"}, http.StatusConflict},
		{"check violation", &pgconn.PgError{Code: "23514"}, http.StatusBadRequest},
		{"syntax error: ours", &pgconn.PgError{Code: "42601"}, 0},
		{"the client went away", context.Canceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dberr.Translate(tt.err, "No such thing.")
			pe, ok := errors.AsType[*problem.Error](got)
			if tt.want == 0 {
				if ok || got != tt.err {
					t.Fatalf("Translate = %v, want the error as it is", got)
				}
				return
			}
			if !ok || pe.Kind.Status() != tt.want {
				t.Fatalf("Translate = %v, want a %d", got, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("Translate = %v, which does not wrap %v", got, tt.err)
			}
			if tt.want == http.StatusServiceUnavailable && pe.Header.Get("Retry-After") == "" {
				t.Error("a 503 without Retry-After")
			}
		})
	}
}
