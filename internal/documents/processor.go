package documents

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Default work bounds of a Processor.
const (
	// DefaultTimeout is how long one operation may take.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxDecodedBytes is how many bytes the streams pdfcpu
	// decompresses from one document may add up to.
	DefaultMaxDecodedBytes = 64 << 20
)

// Processor runs PDF operations on untrusted documents within work bounds:
// at most MaxPages pages, MaxDecodedBytes decompressed, Timeout of time, and
// the operations Slots allows at once. The zero Processor applies the
// default bounds and lets any number of operations run at once.
//
// pdfcpu cannot be interrupted once validating or writing, so a Processor
// runs it in a goroutine of its own: past the deadline an operation returns
// ErrTooCostly at once, while its slot stays taken until pdfcpu's current
// step really ends, so that the CPU and memory the replica spends on PDFs
// stay bounded by Slots. No further step starts after the deadline.
type Processor struct {
	// Slots, if not nil, bounds how many operations run at once.
	Slots *Slots
	// Timeout bounds how long one operation may take, from Begin to End,
	// storing parts included (DefaultTimeout if zero).
	Timeout time.Duration
	// MaxDecodedBytes bounds the bytes pdfcpu may decompress from one
	// document, all streams together (DefaultMaxDecodedBytes if zero).
	MaxDecodedBytes int64
}

func (p *Processor) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

func (p *Processor) maxDecoded() int64 {
	if p.MaxDecodedBytes > 0 {
		return p.MaxDecodedBytes
	}
	return DefaultMaxDecodedBytes
}

// Begin starts an operation of user: it takes a slot, returning a
// *BusyError if Slots refuses, and starts the clock of Timeout. The caller
// must call End once done with the operation, which may hold several steps
// (reading the source from storage counts against the deadline too).
func (p *Processor) Begin(ctx context.Context, user int64) (*Operation, error) {
	release := func() {}
	if p.Slots != nil {
		var err error
		if release, err = p.Slots.Take(user); err != nil {
			return nil, err
		}
	}
	op := &Operation{parent: ctx, timeout: p.timeout(), maxDecoded: p.maxDecoded(), release: release}
	op.ctx, op.cancel = context.WithTimeout(ctx, op.timeout)
	return op, nil
}

// Operation is a Processor's operation in progress: it holds a slot and a
// deadline. Its methods must not be called concurrently.
type Operation struct {
	ctx        context.Context // the caller's, with the deadline
	parent     context.Context
	cancel     context.CancelFunc
	timeout    time.Duration
	maxDecoded int64
	release    func()
	detached   bool // a step outlived the deadline and frees the slot itself
}

// End ends the operation. Its slot is freed now, or, if a step of pdfcpu
// work is still running past the deadline, when that step ends.
func (op *Operation) End() {
	op.cancel()
	if !op.detached {
		op.release()
	}
}

// Inspect checks that b is a readable PDF and counts its pages.
//
// It returns ErrNotPDF unless b starts with "%PDF-"; ErrDamaged if the file
// does not end with a cross-reference trailer (as a truncated upload does),
// if pdfcpu cannot read or validate it, or if it has no pages; ErrEncrypted
// if it needs a password to open; ErrTooManyPages past MaxPages;
// ErrTooCostly past MaxDecodedBytes or the deadline; and the caller's
// context error if that context ends first.
func (op *Operation) Inspect(b []byte) (Info, error) {
	if err := sniff(b); err != nil {
		return Info{}, err
	}
	var info Info
	err := op.run(func() error {
		doc, err := read(op.ctx, b, model.VALIDATE, op.maxDecoded)
		if err != nil {
			return err
		}
		info = Info{Pages: doc.PageCount}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	return info, nil
}

// Split makes one PDF per range of b, each holding exactly the pages of its
// range in order, and passes each to part as soon as it is made, so that at
// most one part is in memory at a time: part must not keep pdf after it
// returns. No ranges means one part per page. Ranges must lie inside the
// document and must not repeat or overlap (see ParseRanges). part runs in
// the caller's goroutine and never after Split returns; an error from part
// stops Split, which returns it as it is. The deadline is checked before
// each part.
//
// The parts together may take at most MaxSplitGrowth times len(b): the part
// that would go past that is not passed on, and Split returns ErrTooLarge. A
// caller that stores parts as they come removes them when Split fails.
//
// Besides the errors of Inspect, Split returns a *RangeError for a bad range.
func (op *Operation) Split(b []byte, ranges []Range, part func(i int, pdf []byte) error) error {
	if err := sniff(b); err != nil {
		return err
	}
	var doc *model.Context
	err := op.run(func() error {
		var err error
		if doc, err = read(op.ctx, b, model.SPLIT, op.maxDecoded); err != nil {
			return err
		}
		// Optimizing once up front shares fonts and images between pages,
		// so each part below copies only what its own pages use, once.
		if err := api.OptimizeContext(doc); err != nil {
			return damaged(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		if ranges, err = ParseRanges(nil, doc.PageCount); err != nil {
			return err
		}
	}
	if err := checkRanges(ranges, doc.PageCount); err != nil {
		return err
	}
	limit, written := MaxSplitGrowth*int64(len(b)), int64(0)
	for i, r := range ranges {
		var pdf []byte
		err := op.run(func() error {
			var err error
			pdf, err = extract(doc, r)
			return err
		})
		if err != nil {
			return err
		}
		if written += int64(len(pdf)); written > limit {
			return fmt.Errorf("%w: parts up to range %d (%s) take %d bytes, over %d times the source's %d",
				ErrTooLarge, i, r, written, MaxSplitGrowth, len(b))
		}
		if err := part(i, pdf); err != nil {
			return err
		}
	}
	return nil
}

// extract writes the pages of r as a PDF of their own.
func extract(doc *model.Context, r Range) ([]byte, error) {
	pageNrs := make([]int, 0, r.Pages())
	for p := r.From; p <= r.To; p++ {
		pageNrs = append(pageNrs, p)
	}
	part, err := pdfcpu.ExtractPages(doc, pageNrs, false)
	if err != nil {
		return nil, fmt.Errorf("%w: extract pages %s: %v", ErrDamaged, r, err)
	}
	var buf bytes.Buffer
	if err := api.WriteContext(part, &buf); err != nil {
		return nil, fmt.Errorf("%w: write pages %s: %v", ErrDamaged, r, err)
	}
	return buf.Bytes(), nil
}

// run runs one step of pdfcpu work in a goroutine of its own and waits for
// it or for the deadline, whichever comes first. If the deadline comes
// first, run returns at once and the step frees the slot when it really
// ends, and no other step starts. A panic in the step is ErrDamaged.
func (op *Operation) run(step func() error) error {
	if op.ctx.Err() != nil {
		return op.stopped()
	}
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		defer recoverDamaged(&err)
		err = step()
	}()
	select {
	case err := <-done:
		if err != nil && op.ctx.Err() != nil {
			return op.stopped() // the step gave up because of the deadline
		}
		return err
	case <-op.ctx.Done():
		op.detached = true
		go func() {
			<-done
			op.release()
		}()
		return op.stopped()
	}
}

// stopped is the error of an operation whose context ended.
func (op *Operation) stopped() error {
	if err := op.parent.Err(); err != nil {
		return err // the caller gave up: not the document's fault
	}
	return fmt.Errorf("%w: took more than %v", ErrTooCostly, op.timeout)
}
