package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/examples/reports"
	"github.com/rolegate/rolegate/problem"
)

// Server implements the example's operations; the gate has already
// checked every caller's token and roles against the spec.
type Server struct {
	// Ready says why the service is not ready (resource.Handler.Ready),
	// or nil when it is.
	Ready func() error

	mu      sync.Mutex
	reports []reports.Report
}

var _ reports.StrictServerInterface = (*Server)(nil)

// GetHealth answers that the process is up.
func (s *Server) GetHealth(context.Context, reports.GetHealthRequestObject) (reports.GetHealthResponseObject, error) {
	return reports.GetHealth200JSONResponse{Status: reports.Ok}, nil
}

// GetReady answers 200 while the service follows rolegate's revocation
// feed, and 503 saying why otherwise: it would let tokens revoked
// meanwhile through.
func (s *Server) GetReady(context.Context, reports.GetReadyRequestObject) (reports.GetReadyResponseObject, error) {
	if err := s.Ready(); err != nil {
		return nil, &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "rolegate's revocation feed is not followed: " + err.Error(),
			Header: http.Header{"Retry-After": {"5"}},
		}
	}
	return reports.GetReady200JSONResponse{Status: reports.Ok}, nil
}

// ListReports returns every report, to users and admins.
func (s *Server) ListReports(context.Context, reports.ListReportsRequestObject) (reports.ListReportsResponseObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return reports.ListReports200JSONResponse{Reports: append([]reports.Report{}, s.reports...)}, nil
}

// CreateReport stores a report signed with its author from the token.
func (s *Server) CreateReport(ctx context.Context, req reports.CreateReportRequestObject) (reports.CreateReportResponseObject, error) {
	caller := access.Caller(ctx)
	author := caller.Email
	if caller.ClientID != "" { // a machine client's token has no email
		author = "client " + caller.ClientID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := reports.Report{
		Id:        int64(len(s.reports) + 1),
		Title:     req.Body.Title,
		Author:    author,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	s.reports = append(s.reports, r)
	return reports.CreateReport201JSONResponse(r), nil
}
