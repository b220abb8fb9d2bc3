package documents

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Past the deadline an operation answers at once, but pdfcpu cannot be
// interrupted: the slot stays taken until the step really ends, and no
// further step runs.
func TestOperationDeadlineKeepsTheSlot(t *testing.T) {
	slots := NewSlots(1, 1)
	p := &Processor{Slots: slots, Timeout: time.Millisecond}
	op, err := p.Begin(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	release := op.release
	op.release = func() { release(); close(freed) }

	unblock := make(chan struct{})
	err = op.run(func() error { <-unblock; return nil }) // pdfcpu, busy past the deadline
	if !errors.Is(err, ErrTooCostly) {
		t.Fatalf("run() = %v, want ErrTooCostly", err)
	}
	if err := op.run(func() error { t.Error("a step ran after the deadline"); return nil }); !errors.Is(err, ErrTooCostly) {
		t.Errorf("a second run() = %v, want ErrTooCostly", err)
	}
	op.End()
	if _, err := slots.Take(7); !errors.Is(err, ErrUserBusy) {
		t.Errorf("Take() while the step still runs = %v, want ErrUserBusy", err)
	}
	if _, err := slots.Take(8); !errors.Is(err, ErrBusy) {
		t.Errorf("Take() for another user while the step still runs = %v, want ErrBusy", err)
	}
	close(unblock)
	<-freed
	release, err = slots.Take(7)
	if err != nil {
		t.Fatalf("Take() once the step ended: %v", err)
	}
	release()
}

// A caller that goes away is told so, not that the document is too costly.
func TestOperationCallerGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	op, err := (&Processor{}).Begin(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer op.End()
	unblock := make(chan struct{})
	defer close(unblock)
	cancel()
	if err := op.run(func() error { <-unblock; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("run() = %v, want context.Canceled", err)
	}
}

// A panic in pdfcpu is a damaged document, not a crash.
func TestOperationPanic(t *testing.T) {
	op, err := (&Processor{}).Begin(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	defer op.End()
	if err := op.run(func() error { panic("boom") }); !errors.Is(err, ErrDamaged) {
		t.Errorf("run() = %v, want ErrDamaged", err)
	}
}
