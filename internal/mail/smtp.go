package mail

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLSPolicy is how the connection to the mail server is secured.
type TLSPolicy string

// The TLS policies, by how ROLEGATE_SMTP_URL asks for them.
const (
	// StartTLS (smtp://, the default) upgrades the connection with
	// STARTTLS and sends nothing to a server that does not offer it.
	StartTLS TLSPolicy = "required"
	// OpportunisticTLS (smtp://…?starttls=opportunistic) upgrades with
	// STARTTLS when the server offers it and goes on in plain otherwise,
	// which anyone on the path can force by hiding the offer.
	OpportunisticTLS TLSPolicy = "opportunistic"
	// NoTLS (smtp://…?starttls=off) never upgrades: for a relay on the
	// same host or network.
	NoTLS TLSPolicy = "off"
	// ImplicitTLS (smtps://) speaks TLS from the first byte (RFC 8314).
	ImplicitTLS TLSPolicy = "implicit"
)

// SMTPServer is the mail server ROLEGATE_SMTP_URL names. Its String form
// hides the password; the zero value names none.
type SMTPServer struct {
	Host string
	Port int
	TLS  TLSPolicy
	// Username and Password are the credentials of SMTP AUTH; none when
	// Username is empty.
	Username, Password string
}

// ParseSMTPURL reads a mail server's URL: smtp://[user:password@]host[:port]
// (port 587, STARTTLS required; ?starttls=opportunistic or ?starttls=off
// relax it) or smtps://[user:password@]host[:port] (port 465, implicit
// TLS). User and password are percent-encoded, as in any URL. Its errors
// never quote the URL, which may hold a password.
func ParseSMTPURL(raw string) (SMTPServer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPServer{}, errors.New("not a URL such as smtp://user:password@mail.example.com:587 or smtps://mail.example.com:465")
	}
	var s SMTPServer
	switch u.Scheme {
	case "smtp":
		s.TLS, s.Port = StartTLS, 587
	case "smtps":
		s.TLS, s.Port = ImplicitTLS, 465
	default:
		return SMTPServer{}, errors.New("the scheme must be smtp:// (STARTTLS) or smtps:// (TLS)")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return SMTPServer{}, errors.New("no host, as in smtp://mail.example.com:587")
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" || strings.Contains(raw, "#") {
		return SMTPServer{}, errors.New("a mail server's URL has no path or fragment")
	}
	s.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPServer{}, errors.New("the port must be a number from 1 to 65535")
		}
		s.Port = n
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return SMTPServer{}, errors.New("the query is malformed")
	}
	for k, v := range q {
		if k != "starttls" {
			return SMTPServer{}, fmt.Errorf("unknown parameter %q: the one parameter is starttls", k)
		}
		if s.TLS == ImplicitTLS {
			return SMTPServer{}, errors.New("smtps:// speaks TLS from the start: starttls does not apply")
		}
		switch v[len(v)-1] {
		case "required":
		case "opportunistic":
			s.TLS = OpportunisticTLS
		case "off":
			s.TLS = NoTLS
		default:
			return SMTPServer{}, errors.New("starttls must be required, opportunistic or off")
		}
		if len(v) > 1 {
			return SMTPServer{}, errors.New("starttls is given more than once")
		}
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
		if s.Username == "" || s.Password == "" {
			return SMTPServer{}, errors.New("credentials need both a user and a password, as in smtp://user:password@host")
		}
	}
	return s, nil
}

// String is s as a URL, the password hidden.
func (s SMTPServer) String() string {
	if s.Host == "" {
		return ""
	}
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	switch s.TLS {
	case ImplicitTLS:
		u.Scheme = "smtps"
	case OpportunisticTLS, NoTLS:
		u.RawQuery = "starttls=" + string(s.TLS)
	}
	if s.Username != "" {
		u.User = url.UserPassword(s.Username, "xxxxx")
	}
	return u.String()
}

// SMTPOptions tune an SMTP sender.
type SMTPOptions struct {
	// Timeout bounds connecting (TCP, TLS, EHLO, STARTTLS and AUTH
	// together), and again sending a message (default 10s).
	Timeout time.Duration
	// RootCAs are the authorities the server's certificate must chain
	// to; nil means the system's. Tests trust their own.
	RootCAs *x509.CertPool
}

// DefaultSMTPTimeout is SMTPOptions.Timeout's default.
const DefaultSMTPTimeout = 10 * time.Second

// SMTP sends each message in an SMTP conversation of its own with one
// server, from one sender address.
type SMTP struct {
	client   *gomail.Client
	from     string
	password string
}

// NewSMTP returns a sender through srv, whose messages come from from (an
// address, perhaps with a display name). With credentials it
// authenticates with the strongest mechanism the server offers; on a
// connection without TLS, only with those that do not send the password
// (SCRAM, NTLM, CRAM-MD5), never PLAIN or LOGIN.
func NewSMTP(srv SMTPServer, from string, o SMTPOptions) (*SMTP, error) {
	if srv.Host == "" {
		return nil, errors.New("mail: no SMTP server")
	}
	opts := []gomail.Option{
		gomail.WithPort(srv.Port),
		gomail.WithTimeout(cmp.Or(o.Timeout, DefaultSMTPTimeout)),
		gomail.WithTLSConfig(&tls.Config{ServerName: srv.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}),
	}
	switch srv.TLS {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case OpportunisticTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("mail: unknown TLS policy %q", srv.TLS)
	}
	if srv.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(srv.Username), gomail.WithPassword(srv.Password))
	}
	client, err := gomail.NewClient(srv.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: the SMTP client: %w", err)
	}
	return &SMTP{client: client, from: from, password: srv.Password}, nil
}

// Send delivers m in one SMTP conversation; ctx bounds only the dial, the
// timeout the rest.
func (s *SMTP) Send(ctx context.Context, m Outgoing) error {
	msg, err := compose(s.from, m, false)
	if err != nil {
		return err
	}
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		text := err.Error()
		if s.password != "" {
			// No server is known to echo it; should one, it goes no further.
			text = strings.ReplaceAll(text, s.password, "xxxxx")
		}
		return errors.New("smtp: " + text)
	}
	return nil
}
