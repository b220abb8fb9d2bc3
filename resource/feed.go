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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rolegate/rolegate/gen/db"
	"github.com/rolegate/rolegate/internal/revocation"
)

// FeedRole is the role rolegate's revocation feed admits: the machine
// client of Config.ClientID must hold it.
const FeedRole = "resource-server"

// Paths of rolegate's revocation feed, under Config.RolegateURL.
const (
	SnapshotPath = "/revocations"
	StreamPath   = "/revocations/events"
)

// Timing and bounds of the feed.
const (
	// feedIdle is how long the stream may stay silent (rolegate sends a
	// comment every 15 seconds) before it counts as dead.
	feedIdle = 35 * time.Second
	// resumeWindow is how long after the stream was last known to
	// deliver (its last line, or its end in order) a reconnection resumes
	// from Last-Event-ID; later, it takes a snapshot again. Well under the
	// 30 seconds of the log that rolegate reads again on resume, so that an
	// entry committed out of seq order, lost in flight, is not missed
	// unless its transaction took over 20 seconds.
	resumeWindow = 10 * time.Second
	// renewAt is the part of an access token's lifetime after which the
	// stream is opened again with a new token (rolegate ends it at exp).
	renewAt         = 0.8
	maxBackoff      = 5 * time.Second
	maxSnapshotSize = 64 << 20
	maxEventLine    = 64 << 10
	maxTokenBytes   = 64 << 10
)

// feed keeps a revocation.List current with rolegate's revocation feed:
// it takes a token with the client credentials grant, a snapshot, then
// follows the stream, reconnecting with backoff and Last-Event-ID.
type feed struct {
	list         *revocation.List
	client       *http.Client // the snapshot and the token, bounded
	stream       *http.Client // the stream, bounded by its context only
	logger       *slog.Logger
	tokenURL     string
	snapshotURL  string
	streamURL    string
	clientID     string
	clientSecret string
	down         atomic.Pointer[error] // nil while caught up with the stream
	mu           sync.Mutex
	access       string    // the access token
	renew        time.Time // when to get another
	last         int64     // the seq the state is current to
	heard        time.Time // the last word from the stream (event or comment)
}

// errNotCaughtUp is Ready's answer between a snapshot and the stream's
// caught-up event.
var errNotCaughtUp = errors.New("resource: the revocation feed is not caught up yet")

// Err returns nil while the state follows the stream, or why not.
func (f *feed) Err() error {
	if p := f.down.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *feed) setDown(err error) {
	if was := f.Err(); was == nil || errors.Is(was, errNotCaughtUp) {
		f.logger.Error("rolegate's revocation feed is down: revocations made meanwhile are not seen until it is back", "err", err)
	}
	f.down.Store(&err)
}

func (f *feed) setUp() {
	if err := f.Err(); err != nil {
		if !errors.Is(err, errNotCaughtUp) {
			f.logger.Info("rolegate's revocation feed is up", "was", err.Error())
		}
		f.down.Store(nil)
	}
}

// token returns an access token of the client, fetching one when the one
// held is due for renewal.
func (f *feed) token(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.access != "" && time.Now().Before(f.renew) {
		return f.access, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {FeedRole}}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: each part form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(f.clientID), url.QueryEscape(f.clientSecret))
	resp, err := f.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("resource: a token for the revocation feed: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes))
	if err != nil {
		return "", fmt.Errorf("resource: a token for the revocation feed: %w", err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(body, &t) // judged by what it holds
	switch {
	case resp.StatusCode != http.StatusOK && t.Error == "invalid_scope":
		return "", fmt.Errorf("resource: the machine client %s does not hold the role %s that the revocation feed needs (rolegate client add --name … --roles %s)", f.clientID, FeedRole, FeedRole)
	case resp.StatusCode != http.StatusOK && t.Error != "":
		return "", fmt.Errorf("resource: a token for the revocation feed: POST %s: %s %s", f.tokenURL, resp.Status, t.Error)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("resource: a token for the revocation feed: POST %s: %s", f.tokenURL, resp.Status)
	case t.AccessToken == "" || t.ExpiresIn <= 0:
		return "", fmt.Errorf("resource: a token for the revocation feed: POST %s: no access_token and expires_in", f.tokenURL)
	}
	life := time.Duration(float64(time.Duration(t.ExpiresIn)*time.Second) * renewAt)
	f.access, f.renew = t.AccessToken, time.Now().Add(life)
	return f.access, nil
}

// forget drops the access token held, which rolegate refused.
func (f *feed) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access = ""
}

// snapshot replaces what the state is current to with rolegate's snapshot.
func (f *feed) snapshot(ctx context.Context) error {
	tok, err := f.token(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.snapshotURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("resource: the revocation snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			f.forget()
		}
		return fmt.Errorf("resource: the revocation snapshot: GET %s: %s", f.snapshotURL, resp.Status)
	}
	var snap struct {
		Seq     int64   `json:"seq"`
		Entries []entry `json:"entries"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSnapshotSize)).Decode(&snap); err != nil {
		return fmt.Errorf("resource: the revocation snapshot: %w", err)
	}
	rows := make([]db.ListRevocationsRow, 0, len(snap.Entries))
	for _, e := range snap.Entries {
		if r, ok := f.row(e); ok {
			rows = append(rows, r)
		}
	}
	f.list.Apply(rows)
	f.last, f.heard = snap.Seq, time.Now()
	return nil
}

// follow follows the stream until ctx ends, reconnecting with backoff:
// from the last event's id soon after it, from a new snapshot later.
func (f *feed) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if time.Since(f.heard) > resumeWindow {
			err = f.snapshot(ctx)
		}
		if err == nil {
			var clean bool
			began := time.Now()
			clean, err = f.follow1(ctx)
			// A stream that ends at once, again and again, is not in
			// order: it gets the backoff.
			if clean && f.Err() == nil && time.Since(began) > time.Second {
				// Renewing the token, or rolegate's replica ended the
				// stream (it drains, say): everything sent until then
				// arrived, and the next connection resumes from there.
				// Still up, so that readiness does not flap through a
				// rolling restart of rolegate; down if that fails.
				backoff = 100 * time.Millisecond
				continue
			}
			if err == nil {
				err = errors.New("rolegate ended the revocation stream before it caught up, or at once")
			}
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
// entries. It reports clean when the connection ended in order: it ended
// it itself, for a new token, or rolegate did.
func (f *feed) follow1(ctx context.Context) (clean bool, err error) {
	tok, err := f.token(ctx)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	renew := f.renew
	f.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, renew)
	defer cancel()
	ctx, silenced := context.WithCancelCause(ctx)
	defer silenced(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.streamURL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Last-Event-ID", strconv.FormatInt(f.last, 10))
	// Silence for feedIdle ends the connection: a peer gone without a
	// word, a proxy holding the bytes back.
	idle := time.AfterFunc(feedIdle, func() { silenced(errSilent) })
	defer idle.Stop()
	resp, err := f.stream.Do(req)
	if err != nil {
		if renewing(ctx, renew) {
			return true, nil
		}
		return false, fmt.Errorf("resource: the revocation stream: %w", cmpErr(context.Cause(ctx), err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			f.forget()
		}
		return false, fmt.Errorf("resource: the revocation stream: GET %s: %s", f.streamURL, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, fmt.Errorf("resource: the revocation stream: GET %s: Content-Type %q", f.streamURL, ct)
	}
	err = f.read(resp.Body, func() { idle.Reset(feedIdle) })
	if renewing(ctx, renew) || err == nil {
		// Everything sent before the end has arrived: a resume from here
		// misses only what the log's re-read brings again.
		f.heard = time.Now()
		return true, nil
	}
	return false, fmt.Errorf("resource: the revocation stream: %w", cmpErr(context.Cause(ctx), err))
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
// ends in order), applying the entries in batches (what has arrived
// together) and calling heard on every line.
func (f *feed) read(body io.Reader, heard func()) error {
	br := bufio.NewReaderSize(body, maxEventLine)
	var event, data, id string
	var pending []db.ListRevocationsRow
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("an event line over %d bytes", maxEventLine)
		}
		if err != nil {
			f.list.Apply(pending)
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
			switch event {
			case "revocation":
				var e entry
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					return fmt.Errorf("an event that is not an entry: %w", err)
				}
				if r, ok := f.row(e); ok {
					pending = append(pending, r)
				}
				if n, err := strconv.ParseInt(id, 10, 64); err == nil {
					f.last = n
				}
			case "caught-up":
				f.list.Apply(pending)
				pending = pending[:0]
				f.setUp()
			}
			event, data, id = "", "", ""
		case line[0] == ':': // a comment: the connection is alive
			f.list.Apply(nil) // drops entries whose tokens have all expired
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(name) {
			case "event":
				event = string(value)
			case "data":
				data += string(value)
			case "id":
				id = string(value)
			}
		}
		if br.Buffered() == 0 && len(pending) > 0 {
			f.list.Apply(pending)
			pending = pending[:0]
		}
	}
}

// entry is a RevocationEntry of rolegate's spec.
type entry struct {
	Seq        int64     `json:"seq"`
	Kind       string    `json:"kind"`
	SessionID  *string   `json:"session_id"`
	UserID     *int64    `json:"user_id"`
	ClientID   *string   `json:"client_id"`
	TokenID    *string   `json:"token_id"`
	MinVersion *int64    `json:"min_version"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// row is e as a row of the log, for List.Apply; an entry that does not
// hold what its kind needs is logged and skipped.
func (f *feed) row(e entry) (db.ListRevocationsRow, bool) {
	r := db.ListRevocationsRow{Seq: e.Seq, ExpiresAt: pgtype.Timestamptz{Time: e.ExpiresAt, Valid: true}}
	switch {
	case e.Kind == "session" && e.SessionID != nil:
		r.SessionID = e.SessionID
	case e.Kind == "token" && e.TokenID != nil:
		r.TokenID = e.TokenID
	case e.Kind == "user" && e.UserID != nil && e.MinVersion != nil:
		r.UserID, r.MinVersion = e.UserID, e.MinVersion
	case e.Kind == "client" && e.ClientID != nil && e.MinVersion != nil:
		r.ClientID, r.MinVersion = e.ClientID, e.MinVersion
	default:
		f.logger.Warn("rolegate's revocation feed: an entry of an unknown kind, or without its subject, skipped", "seq", e.Seq, "kind", e.Kind)
		return r, false
	}
	return r, true
}
