// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp)
// in-process on loopback for tests: it takes mail as a mail server does,
// over STARTTLS or implicit TLS with a certificate made for the test, with
// or without AUTH, and parses each message that arrives (net/mail,
// mime/multipart) so that tests can read its headers, parts and links.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options say how a Server takes mail.
type Options struct {
	// StartTLS offers STARTTLS, with a certificate for 127.0.0.1 and
	// localhost that Server.Roots trusts.
	StartTLS bool
	// ImplicitTLS speaks TLS from the first byte (smtps://), with the
	// same certificate.
	ImplicitTLS bool
	// Username and Password, when set, are required (AUTH PLAIN, offered
	// only over TLS unless PlainAuth) before any mail is taken.
	Username, Password string
	// PlainAuth offers AUTH PLAIN on a connection without TLS too, as a
	// careless server would.
	PlainAuth bool
}

// Received is a message as it arrived.
type Received struct {
	// From and To are the SMTP envelope's (MAIL FROM, RCPT TO).
	From string
	To   []string
	// TLS says whether the message came over TLS; User is who
	// authenticated, if anyone.
	TLS  bool
	User string
	// Message is the message parsed.
	Message
}

// Message is a message parsed: its header, its decoded subject, and its
// text/plain and text/html parts, decoded, their lines ending in \n
// rather than the CRLF of the wire.
type Message struct {
	Header  mail.Header
	Subject string
	// ContentType is the top-level media type, such as
	// multipart/alternative.
	ContentType string
	Text, HTML  string
	Raw         []byte
}

// Server is an SMTP server on 127.0.0.1. Stop and Start take it down and
// bring it back on the same address.
type Server struct {
	// Addr is host:port.
	Addr string
	o    Options
	cert tls.Certificate
	pool *x509.CertPool

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	received []Received
	errs     []error
	arrived  chan struct{} // closed and replaced on each arrival
}

// NewServer starts a server, stopped when the test ends.
func NewServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{o: o, arrived: make(chan struct{})}
	if o.StartTLS || o.ImplicitTLS {
		s.cert, s.pool = certificate(tb)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.serve(ln)
	tb.Cleanup(s.Stop)
	return s
}

// URL is the server's address as ROLEGATE_SMTP_URL names it, with its
// credentials: smtps:// for implicit TLS, smtp:// for STARTTLS, and
// smtp://…?starttls=off without TLS.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr}
	switch {
	case s.o.ImplicitTLS:
		u.Scheme = "smtps"
	case !s.o.StartTLS:
		u.RawQuery = "starttls=off"
	}
	if s.o.Username != "" {
		u.User = url.UserPassword(s.o.Username, s.o.Password)
	}
	return u.String()
}

// Roots trusts the server's certificate (nil without TLS).
func (s *Server) Roots() *x509.CertPool { return s.pool }

// Stop closes the listener and every connection: the server refuses
// connections until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// The listener too: Serve may not have taken it up yet.
		_ = ln.Close()
		_ = srv.Close()
	}
}

// Start brings a stopped server back on its address.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		tb.Fatalf("mailtest: listening again on %s: %v", s.Addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 4 << 20
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = discard{}
	srv.AllowInsecureAuth = s.o.PlainAuth
	if s.o.StartTLS || s.o.ImplicitTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	}
	if s.o.ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Received returns the messages that arrived so far, in order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Wait waits up to timeout for n messages in all to have arrived and
// returns them, failing the test if they do not, or if one arrived that
// could not be parsed.
func (s *Server) Wait(tb testing.TB, n int, timeout time.Duration) []Received {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, errs, arrived := append([]Received(nil), s.received...), s.errs, s.arrived
		s.mu.Unlock()
		if len(errs) > 0 {
			tb.Fatalf("mailtest: a message could not be parsed: %v", errors.Join(errs...))
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-arrived:
		case <-deadline:
			tb.Fatalf("mailtest: %d message(s) arrived within %v, want %d", len(got), timeout, n)
		}
	}
}

func (s *Server) add(r Received, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
	} else {
		s.received = append(s.received, r)
	}
	close(s.arrived)
	s.arrived = make(chan struct{})
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.o.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.o.Username || password != ss.s.o.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.o.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	m, err := Parse(raw)
	ss.s.add(Received{From: ss.from, To: ss.to, TLS: isTLS, User: ss.user, Message: m}, err)
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// Parse reads an RFC 5322 message (as it arrives, or an .eml file): its
// header, subject and text parts, the parts of a multipart body decoded.
func Parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("mailtest: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw}
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("mailtest: the subject: %w", err)
	}
	m.ContentType, err = m.part(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return m, err
}

// part reads a part of type ct into m, and returns its media type.
func (m *Message) part(ct, cte string, body io.Reader) (string, error) {
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("mailtest: Content-Type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return mediaType, nil
			}
			if err != nil {
				return "", fmt.Errorf("mailtest: %s: %w", mediaType, err)
			}
			// NextPart decodes quoted-printable itself, and drops the header.
			if _, err := m.part(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return "", err
			}
		}
	}
	switch strings.ToLower(cte) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("mailtest: %s: %w", mediaType, err)
	}
	switch text := strings.ReplaceAll(string(b), "\r\n", "\n"); mediaType {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return mediaType, nil
}

// certificate makes a self-signed certificate for 127.0.0.1, ::1 and
// localhost, valid for an hour, and a pool that trusts it.
func certificate(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest " + strconv.FormatInt(serial.Int64(), 36)},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
