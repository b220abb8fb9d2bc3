package resource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FeedRole is the role rolegate's feeds (the revocation log, the
// memberships) admit: the machine client of Config.ClientID must hold it.
const FeedRole = "resource-server"

// Paths of rolegate's feeds, under Config.RolegateURL.
const (
	SnapshotPath          = "/revocations"
	StreamPath            = "/revocations/events"
	MembershipsStreamPath = "/memberships/events"
)

// Timing and bounds of the feeds.
const (
	// feedIdle is how long a stream may stay silent (rolegate sends a
	// comment every 15 seconds) before it counts as dead.
	feedIdle = 35 * time.Second
	// resumeWindow is how long after a stream was last known to deliver
	// (its last line, or its end in order) a reconnection resumes from
	// Last-Event-ID; later, it starts from the whole state again. Well
	// under the 30 seconds of the log that rolegate reads again on resume,
	// so that an entry committed out of seq order, lost in flight, is not
	// missed unless its transaction took over 20 seconds.
	resumeWindow = 10 * time.Second
	// renewAt is the part of an access token's lifetime after which a
	// stream is opened again with a new token (rolegate ends it at exp).
	renewAt         = 0.8
	maxBackoff      = 5 * time.Second
	maxSnapshotSize = 64 << 20
	maxEventLine    = 64 << 10
	maxTokenBytes   = 64 << 10
)

// credentials are the machine client's, with the access token it holds:
// the feeds share one.
type credentials struct {
	client       *http.Client // bounded
	tokenURL     string
	clientID     string
	clientSecret string

	mu     sync.Mutex
	access string    // the access token
	renew  time.Time // when to get another
}

// token returns an access token of the client and when to renew it,
// fetching one when the one held is due for renewal.
func (c *credentials) token(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access != "" && time.Now().Before(c.renew) {
		return c.access, c.renew, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {FeedRole}}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: each part form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	resp, err := c.client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("resource: a token for rolegate's feeds: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("resource: a token for rolegate's feeds: %w", err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(body, &t) // judged by what it holds
	switch {
	case resp.StatusCode != http.StatusOK && t.Error == "invalid_scope":
		return "", time.Time{}, fmt.Errorf("resource: the machine client %s does not hold the role %s that rolegate's feeds need (rolegate client add --name … --roles %s)", c.clientID, FeedRole, FeedRole)
	case resp.StatusCode != http.StatusOK && t.Error != "":
		return "", time.Time{}, fmt.Errorf("resource: a token for rolegate's feeds: POST %s: %s %s", c.tokenURL, resp.Status, t.Error)
	case resp.StatusCode != http.StatusOK:
		return "", time.Time{}, fmt.Errorf("resource: a token for rolegate's feeds: POST %s: %s", c.tokenURL, resp.Status)
	case t.AccessToken == "" || t.ExpiresIn <= 0:
		return "", time.Time{}, fmt.Errorf("resource: a token for rolegate's feeds: POST %s: no access_token and expires_in", c.tokenURL)
	}
	life := time.Duration(float64(time.Duration(t.ExpiresIn)*time.Second) * renewAt)
	c.access, c.renew = t.AccessToken, time.Now().Add(life)
	return c.access, c.renew, nil
}

// forget drops the access token held, which rolegate refused.
func (c *credentials) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access = ""
}

// get fetches u with the client's token into dst (JSON, at most limit
// bytes), for a feed's snapshot.
func (c *credentials) get(ctx context.Context, u string, limit int64, dst any) error {
	tok, _, err := c.token(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			c.forget()
		}
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(dst)
}

// eventLog is the state one of rolegate's feeds keeps current: what a
// follower applies the events of its stream to.
type eventLog interface {
	// prepare readies the state for a connection and returns the
	// Last-Event-ID to send ("" for none): resume says whether the last
	// connection was heard from within resumeWindow.
	prepare(ctx context.Context, resume bool) (lastEventID string, err error)
	// event applies one event (or keeps it for flush); it reports
	// whether the state is caught up with the stream.
	event(name, id string, data []byte) (caughtUp bool, err error)
	// flush applies what the events have brought and not applied yet: at
	// the end of what arrived together, and of the stream.
	flush()
	// comment is a keep-alive's: time passes.
	comment()
}

// follower keeps an eventLog current with one of rolegate's streams: it
// reconnects with backoff and Last-Event-ID, or from the whole state after
// a gap, and with a new token before the one it holds expires.
type follower struct {
	name   string // "revocation feed"
	url    string
	log    eventLog
	creds  *credentials
	stream *http.Client // bounded by its context only
	logger *slog.Logger

	down    atomic.Pointer[error] // nil while caught up with the stream
	initial error                 // down's until first caught up
	upOnce  sync.Once
	up      chan struct{} // closed once first caught up
	heard   time.Time     // the last word from the stream (event or comment), or a snapshot
}

func newFollower(name, u string, log eventLog, creds *credentials, stream *http.Client, logger *slog.Logger) *follower {
	f := &follower{name: name, url: u, log: log, creds: creds, stream: stream, logger: logger, up: make(chan struct{})}
	f.initial = fmt.Errorf("resource: rolegate's %s is not caught up yet", name)
	f.down.Store(&f.initial)
	return f
}

// Err returns nil while the state follows the stream, or why not.
func (f *follower) Err() error {
	if p := f.down.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *follower) setDown(err error) {
	if was := f.Err(); was == nil || was == f.initial {
		f.logger.Error("rolegate's "+f.name+" is down: changes made meanwhile are not seen until it is back", "err", err)
	}
	f.down.Store(&err)
}

func (f *follower) setUp() {
	if err := f.Err(); err != nil {
		if err != f.initial {
			f.logger.Info("rolegate's "+f.name+" is up", "was", err.Error())
		}
		f.down.Store(nil)
		f.upOnce.Do(func() { close(f.up) })
	}
}

// follow follows the stream until ctx ends, reconnecting with backoff:
// from the last event's id soon after it, from the whole state later.
func (f *follower) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		clean, err := f.follow1(ctx)
		// A stream that ends at once, again and again, is not in order: it
		// gets the backoff.
		if err == nil && clean && f.Err() == nil && time.Since(began) > time.Second {
			// Renewing the token, or rolegate's replica ended the stream
			// (it drains, say): everything sent until then arrived, and the
			// next connection resumes from there. Still up, so that
			// readiness does not flap through a rolling restart of
			// rolegate; down if that fails.
			backoff = 100 * time.Millisecond
			continue
		}
		if err == nil {
			err = fmt.Errorf("rolegate ended the %s's stream before it caught up, or at once", f.name)
		}
		if ctx.Err() != nil {
			return
		}
		if f.Err() == nil { // it caught up before it ended
			backoff = 100 * time.Millisecond
		}
		f.setDown(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow1 reads one connection of the stream until it ends, applying its
// events. It reports clean when the connection ended in order: it ended it
// itself, for a new token, or rolegate did.
func (f *follower) follow1(ctx context.Context) (clean bool, err error) {
	resume := time.Since(f.heard) <= resumeWindow
	lastID, err := f.log.prepare(ctx, resume)
	if err != nil {
		return false, err
	}
	if !resume && lastID != "" {
		f.heard = time.Now() // a snapshot was taken: resume from it
	}
	tok, renew, err := f.creds.token(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithDeadline(ctx, renew)
	defer cancel()
	ctx, silenced := context.WithCancelCause(ctx)
	defer silenced(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// Silence for feedIdle ends the connection: a peer gone without a
	// word, a proxy holding the bytes back.
	idle := time.AfterFunc(feedIdle, func() { silenced(errSilent) })
	defer idle.Stop()
	resp, err := f.stream.Do(req)
	if err != nil {
		if renewing(ctx, renew) {
			return true, nil
		}
		return false, fmt.Errorf("resource: rolegate's %s: %w", f.name, cmpErr(context.Cause(ctx), err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			f.creds.forget()
		}
		return false, fmt.Errorf("resource: rolegate's %s: GET %s: %s", f.name, f.url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, fmt.Errorf("resource: rolegate's %s: GET %s: Content-Type %q", f.name, f.url, ct)
	}
	err = f.read(resp.Body, func() { idle.Reset(feedIdle) })
	if renewing(ctx, renew) || err == nil {
		// Everything sent before the end has arrived: a resume from here
		// misses only what the log's re-read brings again.
		f.heard = time.Now()
		return true, nil
	}
	return false, fmt.Errorf("resource: rolegate's %s: %w", f.name, cmpErr(context.Cause(ctx), err))
}

// errSilent ends a stream that said nothing for feedIdle.
var errSilent = fmt.Errorf("nothing heard for %v", feedIdle)

// cmpErr returns the first error that is not nil.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// renewing reports whether ctx ended at renew, the token's renewal.
func renewing(ctx context.Context, renew time.Time) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded) && !time.Now().Before(renew)
}

// read parses server-sent events from body until it ends (nil when it
// ends in order), handing them to the log and flushing it at the end of
// what has arrived together, and calling heard on every line.
func (f *follower) read(body io.Reader, heard func()) error {
	br := bufio.NewReaderSize(body, maxEventLine)
	var event, id string
	var data []byte
	defer f.log.flush()
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("an event line over %d bytes", maxEventLine)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil // rolegate ended the stream
			}
			return err
		}
		heard()
		f.heard = time.Now()
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(line) == 0: // the end of an event
			if event != "" {
				caughtUp, err := f.log.event(event, id, data)
				if err != nil {
					return err
				}
				if caughtUp {
					f.setUp()
				}
			}
			event, id, data = "", "", data[:0]
		case line[0] == ':': // a comment: the connection is alive
			f.log.comment()
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(name) {
			case "event":
				event = string(value)
			case "data":
				data = append(data, value...)
			case "id":
				id = string(value)
			}
		}
		if br.Buffered() == 0 {
			f.log.flush()
		}
	}
}
