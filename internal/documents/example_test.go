package documents_test

import (
	"context"
	"fmt"

	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/documents/pdftest"
)

func ExampleOperation_Split() {
	pdf := pdftest.Document(5)
	// At most 2 operations per user and 4 in all; the default work bounds.
	p := &documents.Processor{Slots: documents.NewSlots(2, 4)}
	const user = 42
	op, err := p.Begin(context.Background(), user) // a *BusyError if user runs 2 already
	if err != nil {
		panic(err)
	}
	defer op.End()
	info, err := op.Inspect(pdf)
	if err != nil {
		panic(err)
	}
	ranges, err := documents.ParseRanges([]string{"1-2", "3", "4-5"}, info.Pages)
	if err != nil {
		panic(err)
	}
	// Each part is handed over as soon as it is made, to be stored and
	// dropped before the next is made.
	err = op.Split(pdf, ranges, func(i int, part []byte) error {
		info, err := documents.Inspect(part)
		if err != nil {
			return err
		}
		fmt.Printf("part %d: pages %s, %d in all\n", i+1, ranges[i], info.Pages)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// part 1: pages 1-2, 2 in all
	// part 2: pages 3, 1 in all
	// part 3: pages 4-5, 2 in all
}

func ExampleParseRanges() {
	_, err := documents.ParseRanges([]string{"1-3", "2"}, 5)
	fmt.Println(err)
	// Output:
	// documents: bad page range: range 1 ("2") overlaps range 0 (1-3)
}
