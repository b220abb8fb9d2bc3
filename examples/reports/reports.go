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
	byOrg   map[int64][]reports.Report // organizations' reports
	last    int64                      // the last id given
}

var _ reports.StrictServerInterface = (*Server)(nil)

// GetHealth answers that the process is up.
func (s *Server) GetHealth(context.Context, reports.GetHealthRequestObject) (reports.GetHealthResponseObject, error) {
	return reports.GetHealth200JSONResponse{Status: reports.Ok}, nil
}

// GetReady answers 200 while the service follows rolegate's feeds, and
// 503 saying why otherwise: it would let tokens revoked meanwhile through,
// or roles in an organization taken back.
func (s *Server) GetReady(context.Context, reports.GetReadyRequestObject) (reports.GetReadyResponseObject, error) {
	if err := s.Ready(); err != nil {
		return nil, &problem.Error{
			Kind:   problem.Unavailable,
			Detail: "rolegate's feeds are not followed: " + err.Error(),
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
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.newReport(ctx, req.Body.Title)
	s.reports = append(s.reports, r)
	return reports.CreateReport201JSONResponse(r), nil
}

// ListOrgReports returns an organization's reports; the gate has checked
// that the caller is a member (or an admin).
func (s *Server) ListOrgReports(_ context.Context, req reports.ListOrgReportsRequestObject) (reports.ListOrgReportsResponseObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return reports.ListOrgReports200JSONResponse{Reports: append([]reports.Report{}, s.byOrg[req.OrgId]...)}, nil
}

// CreateOrgReport stores a report of an organization; the gate has checked
// that the caller is one of its editors or owners.
func (s *Server) CreateOrgReport(ctx context.Context, req reports.CreateOrgReportRequestObject) (reports.CreateOrgReportResponseObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.newReport(ctx, req.Body.Title)
	r.OrgId = &req.OrgId
	if s.byOrg == nil {
		s.byOrg = map[int64][]reports.Report{}
	}
	s.byOrg[req.OrgId] = append(s.byOrg[req.OrgId], r)
	return reports.CreateOrgReport201JSONResponse(r), nil
}

// newReport returns a report of the caller's with the next id; the caller
// holds s.mu.
func (s *Server) newReport(ctx context.Context, title string) reports.Report {
	caller := access.Caller(ctx)
	author := caller.Email
	if caller.ClientID != "" { // a machine client's token has no email
		author = "client " + caller.ClientID
	}
	s.last++
	return reports.Report{Id: s.last, Title: title, Author: author, CreatedAt: time.Now().UTC().Truncate(time.Second)}
}
