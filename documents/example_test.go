package documents_test

import (
	"fmt"

	"github.com/rolegate/rolegate/documents"
)

func ExampleSplit() {
	pdf, err := documents.MakePDF(5)
	if err != nil {
		panic(err)
	}
	info, err := documents.Inspect(pdf)
	if err != nil {
		panic(err)
	}
	ranges, err := documents.ParseRanges([]string{"1-2", "3", "4-5"}, info.Pages)
	if err != nil {
		panic(err)
	}
	parts, err := documents.Split(pdf, ranges)
	if err != nil {
		panic(err)
	}
	for i, part := range parts {
		info, err := documents.Inspect(part)
		if err != nil {
			panic(err)
		}
		fmt.Printf("part %d: pages %s, %d in all\n", i+1, ranges[i], info.Pages)
	}
	// Output:
	// part 1: pages 1-2, 2 in all
	// part 2: pages 3, 1 in all
	// part 3: pages 4-5, 2 in all
}
