package documents

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// pdfcpuSize is what checkDecoded charges a stream, measured with pdfcpu's
// own filters, each holding its whole output: the reference decodedSize
// must agree with while keeping nothing.
func pdfcpuSize(tb testing.TB, sd types.StreamDict) int64 {
	tb.Helper()
	if len(sd.FilterPipeline) == 0 {
		return int64(len(sd.Raw)) // pdfcpu parses it all the same
	}
	in, total := sd.Raw, int64(0)
	for i := range sd.FilterPipeline {
		stage := types.StreamDict{Dict: sd.Dict, Raw: in, FilterPipeline: sd.FilterPipeline[i : i+1]}
		out, err := stage.DecodeLengthWithLimit(-1, 1<<30)
		if err != nil {
			tb.Fatalf("pdfcpu decoding filter %s: %v", sd.FilterPipeline[i].Name, err)
		}
		total += int64(len(out))
		in = out
	}
	return total
}

// encoded returns content encoded by pdfcpu with filters, the first
// applied last, as a stream dictionary holds them.
func encoded(tb testing.TB, content []byte, filters ...types.PDFFilter) types.StreamDict {
	tb.Helper()
	sd := types.NewStreamDict(types.Dict{}, 0, nil, nil, filters)
	sd.Content = content
	if err := sd.Encode(); err != nil {
		tb.Fatal(err)
	}
	sd.Content = nil
	return sd
}

// decodedSize agrees with pdfcpu's filters on every filter it streams, and
// on pipelines of them.
func TestDecodedSize(t *testing.T) {
	text := []byte(strings.Repeat("BT /F1 24 Tf 72 700 Td (Hello, world) Tj ET\n", 500))
	runs := append(bytes.Repeat([]byte{'a'}, 1000), []byte("abcdefgh")...) // a run and literals
	noEarlyChange := types.Dict{"EarlyChange": types.Integer(0)}
	f := func(name string) types.PDFFilter { return types.PDFFilter{Name: name} }
	tests := []struct {
		name    string
		content []byte
		filters []types.PDFFilter
	}{
		{"no filter", text, nil},
		{"FlateDecode", text, []types.PDFFilter{f("FlateDecode")}},
		{"LZWDecode", text, []types.PDFFilter{f("LZWDecode")}},
		{"LZWDecode without early change", text, []types.PDFFilter{{Name: "LZWDecode", DecodeParms: noEarlyChange}}},
		{"RunLengthDecode", runs, []types.PDFFilter{f("RunLengthDecode")}},
		{"ASCIIHexDecode", text, []types.PDFFilter{f("ASCIIHexDecode")}},
		{"ASCII85Decode", text, []types.PDFFilter{f("ASCII85Decode")}},
		{"ASCII85Decode of zeros", make([]byte, 4001), []types.PDFFilter{f("ASCII85Decode")}},
		{"ASCIIHex then Flate", text, []types.PDFFilter{f("ASCIIHexDecode"), f("FlateDecode")}},
		{"ASCII85 then LZW then RunLength", runs, []types.PDFFilter{f("ASCII85Decode"), f("LZWDecode"), f("RunLengthDecode")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd := encoded(t, tt.content, tt.filters...)
			want := pdfcpuSize(t, sd)
			if got := decodedSize(sd, 1<<30); got != want {
				t.Errorf("decodedSize() = %d, pdfcpu decodes %d", got, want)
			}
			// One byte short of the budget, it gives up over the limit.
			if got := decodedSize(sd, want-1); got <= want-1 {
				t.Errorf("decodedSize(limit %d) = %d, want more than the limit", want-1, got)
			}
		})
	}
}

// A filter that stops early does not save the filter before it from being
// decoded to its end, as pdfcpu decodes it: here the hex digits end at '>'
// long before the inflated stream does.
func TestDecodedSizeDrainsEarlierFilters(t *testing.T) {
	content := append([]byte("41>"), make([]byte, 1<<20)...)
	sd := encoded(t, content, types.PDFFilter{Name: "FlateDecode"})
	sd.FilterPipeline = append(sd.FilterPipeline, types.PDFFilter{Name: "ASCIIHexDecode"})
	if got, want := decodedSize(sd, 1<<30), int64(len(content)+1); got != want {
		t.Errorf("decodedSize() = %d, want %d (the inflated stream and one byte)", got, want)
	}
	if got := decodedSize(sd, 1<<19); got <= 1<<19 {
		t.Errorf("decodedSize(limit 512 KiB) = %d, want more than the limit", got)
	}
}
