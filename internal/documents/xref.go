package documents

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// pdfcpu v0.15 inflates a cross-reference stream while reading with its
// own limit of 512 MiB, whatever the configuration says (xRefStreamDict
// decodes it before a context, and so a configuration, exists), and holds
// what it inflates. So read charges them first, with checkXRefStreams,
// before pdfcpu sees the file.
const (
	// xrefDictWindow is how far past an object's header a cross-reference
	// stream's "stream" keyword may lie. Real ones have dictionaries of a
	// few hundred bytes.
	xrefDictWindow = 1 << 20
	// maxXRefCandidates bounds the offsets checkXRefStreams looks at, and
	// so its work: one per revision of the file, in practice.
	maxXRefCandidates = 256
)

// xrefOffset matches what names the offset of a cross-reference section:
// "startxref N", and a trailer's "/Prev N" and "/XRefStm N".
var xrefOffset = regexp.MustCompile(`(?:startxref|/Prev|/XRefStm)[\x00\t\n\f\r ]+([0-9]{1,10})([\x00\t\n\f\r ]+[0-9]+[\x00\t\n\f\r ]+R)?`)

// objHeader matches "N G obj" at the start of an object.
var objHeader = regexp.MustCompile(`^[\x00\t\n\f\r ]*[0-9]+[\x00\t\n\f\r ]+[0-9]+[\x00\t\n\f\r ]+obj`)

// checkXRefStreams charges b the decoded size of every stream that pdfcpu
// may read as a cross-reference stream: an object at an offset that a
// startxref, /Prev or /XRefStm names. It returns ErrTooCostly once the
// budget is spent, or if the file names more such offsets than any real
// one does, or an object there whose dictionary does not end within
// xrefDictWindow. It parses nothing else: pdfcpu does that.
func checkXRefStreams(c context.Context, b []byte, budget *decodeBudget) error {
	seen := map[int]bool{}
	var endstreams []int // where each "endstream" is, found once
	for _, m := range xrefOffset.FindAllSubmatchIndex(b, -1) {
		if m[4] >= 0 {
			continue // "/Prev 12 0 R": an outline item's, not an offset
		}
		off := atoi(b[m[2]:m[3]])
		if off < 0 || off >= len(b) || seen[off] {
			continue
		}
		seen[off] = true
		if len(seen) > maxXRefCandidates {
			return fmt.Errorf("%w: more than %d cross-reference sections", ErrTooCostly, maxXRefCandidates)
		}
		if err := c.Err(); err != nil {
			return err
		}
		window := b[off:min(len(b), off+xrefDictWindow)]
		h := objHeader.FindIndex(window)
		if h == nil {
			continue // a cross-reference table, or nothing pdfcpu can read
		}
		s := bytes.Index(window[h[1]:], []byte("stream"))
		if s < 0 {
			if bytes.Contains(window[h[1]:], []byte("endobj")) {
				continue // not a stream
			}
			return fmt.Errorf("%w: the object at offset %d, named as a cross-reference section, does not end within %d bytes", ErrTooCostly, off, xrefDictWindow)
		}
		dictText := string(window[h[1] : h[1]+s])
		o, err := model.ParseObjectContext(c, &dictText, 0, model.DefaultResourceLimits().MaxRecursionDepth)
		d, ok := o.(types.Dict)
		if err != nil || !ok {
			continue // pdfcpu cannot read it either
		}
		data := off + h[1] + s + len("stream")
		if data < len(b) && b[data] == '\r' {
			data++
		}
		if data < len(b) && b[data] == '\n' {
			data++
		}
		end := len(b)
		if l := d.IntEntry("Length"); l != nil && *l >= 0 && *l <= len(b)-data {
			end = data + *l
		} else {
			if endstreams == nil {
				endstreams = indexAll(b, []byte("endstream"))
			}
			if i := sort.SearchInts(endstreams, data); i < len(endstreams) {
				end = endstreams[i]
			}
		}
		sd := types.StreamDict{Dict: d, Raw: b[data:end], FilterPipeline: filterPipeline(d)}
		if err := budget.chargeOffset(off, sd); err != nil {
			return err
		}
	}
	return nil
}

// filterPipeline returns the filters d names, as pdfcpu reads them in
// relaxed validation (inline images' abbreviations included). What pdfcpu
// could not read comes out as no filter, charged for its length.
func filterPipeline(d types.Dict) []types.PDFFilter {
	var names []string
	switch f := d["Filter"].(type) {
	case types.Name:
		names = []string{f.Value()}
	case types.Array:
		for _, n := range f {
			if n, ok := n.(types.Name); ok {
				names = append(names, n.Value())
			}
		}
	}
	var parms []types.Dict
	switch p := d["DecodeParms"].(type) {
	case types.Dict:
		parms = []types.Dict{p}
	case types.Array:
		for _, p := range p {
			pd, _ := p.(types.Dict)
			parms = append(parms, pd)
		}
	}
	fs := make([]types.PDFFilter, len(names))
	for i, n := range names {
		if long, ok := filterAliases[n]; ok {
			n = long
		}
		fs[i].Name = n
		if i < len(parms) {
			fs[i].DecodeParms = parms[i]
		}
	}
	return fs
}

// filterAliases are the abbreviations of inline images, which pdfcpu
// accepts for any stream in relaxed validation.
var filterAliases = map[string]string{
	"AHx": filter.ASCIIHex,
	"A85": filter.ASCII85,
	"LZW": filter.LZW,
	"Fl":  filter.Flate,
	"RL":  filter.RunLength,
	"CCF": filter.CCITTFax,
	"DCT": filter.DCT,
}

// atoi parses up to 10 decimal digits.
func atoi(digits []byte) int {
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	return n
}

// indexAll returns the offset of every occurrence of sep in b, in order.
func indexAll(b, sep []byte) []int {
	var at []int
	for i := 0; ; {
		j := bytes.Index(b[i:], sep)
		if j < 0 {
			return append(at, len(b)) // so that a search always ends
		}
		at = append(at, i+j)
		i += j + len(sep)
	}
}
