package documents_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/documents"
)

// FuzzParseRanges feeds ParseRanges the specs of s split at commas (none
// when s is empty) for a document of pages pages. It must not panic; every
// error wraps ErrBadRange and, for a page count it takes, is a
// *RangeError naming one of the specs; what it accepts lies within
// 1..pages, never overlaps, is at most pages ranges, one per spec (one per
// page for none), and reads back the same from its own spelling. Run:
// make fuzz.
func FuzzParseRanges(f *testing.F) {
	for _, seed := range []struct {
		specs string
		pages int
	}{
		{"", 3}, {"1-3", 3}, {"1-2,3", 3}, {"3,1-2", 3}, {"2,3,1", 3}, {"01-003", 3},
		{"0", 3}, {"4", 3}, {"3-1", 3}, {"1-", 3}, {"-2", 3}, {"1--2", 3}, {"1-2-3", 3},
		{"a", 3}, {" 1", 3}, {"+1", 3}, {"", 0}, {"1", 0}, {"1", -1},
		{"99999999999", 3}, {"999999999", 999999999}, {"1-999999999", 10000}, {"1-10000", 10000},
		{"1", 10001}, {"1,2,1", 3}, {"1-2,2-3", 3}, {"3,1-3", 3}, {"1,1,1,1,1,1,1,1", 3},
		{"1-1,01", 3}, {",", 3}, {"1,", 3}, {"\x00", 3}, {"１", 3}, {"1\xff", 3},
	} {
		f.Add(seed.specs, seed.pages)
	}
	f.Fuzz(func(t *testing.T, s string, pages int) {
		var specs []string
		if s != "" {
			specs = strings.Split(s, ",")
		}
		rs, err := documents.ParseRanges(specs, pages)
		if err != nil {
			if !errors.Is(err, documents.ErrBadRange) {
				t.Fatalf("ParseRanges(%q, %d) error %v does not wrap ErrBadRange", specs, pages, err)
			}
			if rs != nil {
				t.Fatalf("ParseRanges(%q, %d) = %v with error %v", specs, pages, rs, err)
			}
			if pages < 1 || pages > documents.MaxPages {
				return
			}
			re, ok := errors.AsType[*documents.RangeError](err)
			switch {
			case !ok:
				t.Fatalf("ParseRanges(%q, %d) error %v is not a *RangeError", specs, pages, err)
			case re.Index < 0 || re.Index >= len(specs) || specs[re.Index] != re.Spec:
				t.Fatalf("ParseRanges(%q, %d) error %+v names no spec given", specs, pages, re)
			}
			return
		}
		if pages < 1 || pages > documents.MaxPages {
			t.Fatalf("ParseRanges(%q, %d) accepted a page count outside 1..%d", specs, pages, documents.MaxPages)
		}
		want := len(specs)
		if want == 0 {
			want = pages
		}
		if len(rs) != want || len(rs) > pages {
			t.Fatalf("ParseRanges(%q, %d) = %d ranges, want %d, at most %d", specs, pages, len(rs), want, pages)
		}
		taken := make([]bool, pages+1)
		spelled := make([]string, len(rs))
		for i, r := range rs {
			if r.From < 1 || r.From > r.To || r.To > pages {
				t.Fatalf("ParseRanges(%q, %d): range %d is %v, not within 1..%d", specs, pages, i, r, pages)
			}
			for p := r.From; p <= r.To; p++ {
				if taken[p] {
					t.Fatalf("ParseRanges(%q, %d): range %d (%v) overlaps an earlier one", specs, pages, i, r)
				}
				taken[p] = true
			}
			spelled[i] = r.String()
		}
		again, err := documents.ParseRanges(spelled, pages)
		if err != nil || len(again) != len(rs) {
			t.Fatalf("ParseRanges(%q, %d) = %v, which read back is %v, %v", specs, pages, rs, again, err)
		}
		for i := range rs {
			if again[i] != rs[i] {
				t.Fatalf("ParseRanges(%q, %d) = %v, which read back is %v", specs, pages, rs, again)
			}
		}
	})
}
