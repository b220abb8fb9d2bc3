package documents_test

import (
	"errors"
	"testing"

	"github.com/rolegate/rolegate/internal/documents"
)

func TestSlots(t *testing.T) {
	s := documents.NewSlots(2, 3)
	take := func(user int64, wantErr error) func() {
		t.Helper()
		release, err := s.Take(user)
		if !errors.Is(err, wantErr) {
			t.Fatalf("Take(%d) error = %v, want %v", user, err, wantErr)
		}
		if err != nil {
			var busy *documents.BusyError
			if !errors.As(err, &busy) || busy.RetryAfter < documents.RetryAfter {
				t.Errorf("Take(%d) error %v is no *BusyError with a Retry-After", user, err)
			}
		}
		return release
	}
	a1, a2 := take(1, nil), take(1, nil)
	take(1, documents.ErrUserBusy)
	b1 := take(2, nil)
	take(3, documents.ErrBusy)     // the replica is full
	take(1, documents.ErrUserBusy) // the user's own bound is named first
	b1()
	b1() // a second release frees nothing more
	if ofUser, all := s.Running(2); ofUser != 0 || all != 2 {
		t.Errorf("Running(2) = %d, %d after release; want 0, 2", ofUser, all)
	}
	c1 := take(3, nil)
	take(4, documents.ErrBusy)
	a1()
	a2()
	c1()
	if ofUser, all := s.Running(1); ofUser != 0 || all != 0 {
		t.Errorf("Running(1) = %d, %d after every release; want 0, 0", ofUser, all)
	}
	take(1, nil)
}
