package revocation

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rolegate/rolegate/gen/db"
)

var discard = slog.New(slog.DiscardHandler)

// A subscription gets each row once, re-reads and expired rows not at all,
// a lower seq that commits late still; a subscriber that falls behind is
// cut off rather than holding the List up, and the feed going down or
// EndSubscriptions ends every subscription.
func TestSubscribe(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := New(func() time.Time { return now })
	l.setUp()
	sid := func(s string) *string { return &s }
	row := func(seq int64, session string, exp time.Duration) db.ListRevocationsRow {
		return db.ListRevocationsRow{Seq: seq, SessionID: sid(session), ExpiresAt: at(now.Add(exp))}
	}
	sub := l.Subscribe(1)
	defer sub.Close()
	slow := l.Subscribe(1)

	seqs := func() []int64 {
		t.Helper()
		select {
		case rows := <-sub.C():
			var s []int64
			for _, r := range rows {
				s = append(s, r.Seq)
			}
			return s
		case <-time.After(time.Second):
			t.Fatal("nothing published")
			return nil
		}
	}
	l.Apply([]db.ListRevocationsRow{row(1, "a", time.Minute), row(3, "c", time.Minute), row(4, "gone", -time.Second)})
	if got := seqs(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("first batch %v, want [1 3]", got)
	}
	// The re-read overlap brings 1 and 3 again, and 2, committed late.
	l.Apply([]db.ListRevocationsRow{row(1, "a", time.Minute), row(2, "b", time.Minute), row(3, "c", time.Minute)})
	if got := seqs(); len(got) != 1 || got[0] != 2 {
		t.Errorf("second batch %v, want [2]", got)
	}
	select {
	case <-slow.Done():
		if !errors.Is(slow.Err(), ErrSlow) {
			t.Errorf("the slow subscriber ended with %v", slow.Err())
		}
	default:
		t.Error("a subscriber that took nothing was not cut off")
	}
	l.Apply([]db.ListRevocationsRow{row(2, "b", time.Minute)})
	select {
	case rows := <-sub.C():
		t.Errorf("a re-read published again: %v", rows)
	default:
	}

	l.down(discard, errors.New("gone"))
	if !errors.Is(sub.Err(), ErrFeedDown) {
		t.Errorf("with the feed down: %v", sub.Err())
	}
	if s := l.Subscribe(1); !errors.Is(s.Err(), ErrFeedDown) {
		t.Errorf("a subscription while the feed is down: %v", s.Err())
	}
	l.setUp()
	open := l.Subscribe(1)
	l.EndSubscriptions()
	if !errors.Is(open.Err(), ErrClosed) || !errors.Is(l.Subscribe(1).Err(), ErrClosed) {
		t.Errorf("after EndSubscriptions: %v", open.Err())
	}
}
