package documents_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/documents/pdftest"
)

// Refusing a compression bomb costs less memory than the budget, let alone
// the bomb: the inflating readers stop once the document's budget is spent
// and nothing they inflate is kept, so what is allocated is pdfcpu's parse
// of the small file and the readers' windows (about 250 KiB). Holding the
// inflated output, as pdfcpu's filters do, allocates about four times the
// budget. Run alone (not in parallel), so that the allocations counted are
// this call's.
func TestDecodedBytesBoundMemory(t *testing.T) {
	const budget, bomb = 4 << 20, 64 << 20
	p := &documents.Processor{MaxDecodedBytes: budget}
	for _, where := range []string{"content", "contents array", "metadata", "object stream", "xref stream"} {
		t.Run(where, func(t *testing.T) {
			pdf := pdftest.Bomb(where, bomb)
			for _, step := range []struct {
				name string
				run  func() error
			}{
				{"Inspect", func() error { _, err := inspect(p, pdf); return err }},
				{"Split", func() error { _, err := split(p, pdf, nil); return err }},
			} {
				var err error
				allocated := allocatedBy(func() { err = step.run() })
				if !errors.Is(err, documents.ErrTooCostly) {
					t.Fatalf("%s() error = %v, want ErrTooCostly", step.name, err)
				}
				if allocated >= budget {
					t.Errorf("%s() allocated %d KiB refusing a %d KiB bomb, want less than the budget, %d KiB",
						step.name, allocated>>10, bomb>>10, budget>>10)
				}
			}
		})
	}
}

// allocatedBy returns the bytes f allocates on the heap (and whatever else
// runs meanwhile: the caller runs alone).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
