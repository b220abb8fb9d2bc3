// Package audit writes the audit trail: who logged in or failed to, whose
// sessions and tokens ended, who changed which account, role, client or
// key. Each event records when, what, the actor (from the request's token),
// the subject, the client's address and user agent, the request id and the
// spec's operation id. Writing an event never fails the request it
// describes: a failure is logged. Events never hold a password, a token or
// a secret.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/httplog"
)

// The event types.
const (
	LoginSucceeded       = "login.succeeded"
	LoginFailed          = "login.failed"
	Throttled            = "login.throttled"
	TokenRefreshed       = "token.refreshed"
	RefreshReused        = "token.refresh_reused"
	TokenRevoked         = "token.revoked"
	SessionEnded         = "session.ended"
	UserCreated          = "user.created"
	UserDeleted          = "user.deleted"
	UserDisabled         = "user.disabled"
	UserEnabled          = "user.enabled"
	UserRolesChanged     = "user.roles_changed"
	UserPasswordChanged  = "user.password_changed"
	ResetRequested       = "password_reset.requested"
	EmailVerified        = "email.verified"
	SignUpRequested      = "signup.requested"
	EmailChangeRequested = "email_change.requested"
	EmailChanged         = "email.changed"
	ResetCompleted       = "password_reset.completed"
	MailFailed           = "mail.failed"
	MFAEnrolled          = "mfa.enrolled"
	MFARemoved           = "mfa.removed"
	MFAFailed            = "mfa.failed"
	RecoveryCodeUsed     = "mfa.recovery_code_used"
	StepUpRequired       = "stepup.required"
	OrgCreated           = "org.created"
	OrgDeleted           = "org.deleted"
	MemberAdded          = "member.added"
	MemberRolesChanged   = "member.roles_changed"
	MemberRemoved        = "member.removed"
	RoleCreated          = "role.created"
	RoleDeleted          = "role.deleted"
	ClientCreated        = "client.created"
	ClientDeleted        = "client.deleted"
	ClientSecretRotated  = "client.secret_rotated"
	KeyRotated           = "key.rotated"
	clientAgentMaxLength = 512
)

// Event is one thing that happened.
type Event struct {
	Type string
	// SubjectUserID is the account the event concerns, or 0.
	SubjectUserID int64
	// Subject names what the event concerns: "user:42", "session:<id>",
	// "role:auditor", "client:cl_…", "key:<kid>", or a login's email.
	Subject string
	// Detail adds what else tells the event apart, such as a failed
	// login's reason or the new roles.
	Detail string
}

// Log writes the trail.
type Log struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// writeTimeout bounds one event's write.
const writeTimeout = 2 * time.Second

// Record writes ev with what ctx tells of the request: the actor, the
// client, the request id and the operation. It never fails: an error is
// logged.
func (l *Log) Record(ctx context.Context, ev Event) {
	if l == nil {
		return
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	p := db.InsertAuditEventParams{
		At: pgtype.Timestamptz{Time: now(), Valid: true}, Type: ev.Type, Subject: ev.Subject, Detail: ev.Detail,
		RequestID: httplog.RequestID(ctx), OperationID: httplog.Operation(ctx),
	}
	ua, addr := httplog.Client(ctx)
	p.UserAgent, p.ClientAddr = truncate(ua, clientAgentMaxLength), addr
	if c := access.Caller(ctx); c != nil {
		if c.ClientID != "" {
			p.ActorClientID = &c.ClientID
		} else {
			p.ActorUserID = &c.UserID
		}
	}
	if ev.SubjectUserID != 0 {
		p.SubjectUserID = &ev.SubjectUserID
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := db.New(l.Pool).InsertAuditEvent(wctx, p); err != nil {
		l.Logger.Error("audit: could not record an event", "type", ev.Type, "request_id", p.RequestID, "err", err)
	}
}

// Prune deletes the events older than retention.
func (l *Log) Prune(ctx context.Context, retention time.Duration) error {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	_, err := db.New(l.Pool).DeleteOldAuditEvents(ctx, pgtype.Timestamptz{Time: now().Add(-retention), Valid: true})
	return err
}

// truncate cuts s to at most n bytes on a character boundary, valid UTF-8
// without NUL characters.
func truncate(s string, n int) string {
	b := []rune{}
	size := 0
	for _, r := range s {
		if r == 0 || r == '\uFFFD' {
			continue
		}
		if size += len(string(r)); size > n {
			break
		}
		b = append(b, r)
	}
	return string(b)
}
