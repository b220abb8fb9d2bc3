package documents

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Info is what Inspect learns about a PDF.
type Info struct {
	// Pages is the number of pages, 1..MaxPages.
	Pages int
}

// Inspect checks that b is a readable PDF and counts its pages.
//
// It returns ErrNotPDF unless b starts with "%PDF-"; ErrDamaged if the file
// does not end with a cross-reference trailer (as a truncated upload does),
// if pdfcpu cannot read or validate it, or if it has no pages; ErrEncrypted
// if it needs a password to open; and ErrTooManyPages past MaxPages.
func Inspect(b []byte) (Info, error) {
	ctx, err := read(b, model.VALIDATE)
	if err != nil {
		return Info{}, err
	}
	return Info{Pages: ctx.PageCount}, nil
}

// Range is pages From..To inclusive, numbered from 1.
type Range struct {
	From, To int
}

// String returns r as ParseRanges reads it: "N" or "N-M".
func (r Range) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return strconv.Itoa(r.From) + "-" + strconv.Itoa(r.To)
}

// Pages returns the number of pages r covers.
func (r Range) Pages() int { return r.To - r.From + 1 }

// ParseRanges parses page ranges of a document of the given number of pages.
// Each spec is "N" (one page) or "N-M" (pages N through M), in decimal
// digits with no spaces or signs. Nil or empty specs mean one range per page.
//
// Every error wraps ErrBadRange: a malformed spec, a page below 1 or above
// pages, N greater than M, or more than MaxPages specs.
func ParseRanges(specs []string, pages int) ([]Range, error) {
	if pages < 1 {
		return nil, fmt.Errorf("%w: the document has no pages", ErrBadRange)
	}
	if len(specs) == 0 {
		rs := make([]Range, pages)
		for i := range rs {
			rs[i] = Range{From: i + 1, To: i + 1}
		}
		return rs, nil
	}
	if len(specs) > MaxPages {
		return nil, fmt.Errorf("%w: %d ranges, at most %d allowed", ErrBadRange, len(specs), MaxPages)
	}
	rs := make([]Range, 0, len(specs))
	for _, spec := range specs {
		r, err := parseRange(spec)
		if err != nil {
			return nil, err
		}
		if err := r.check(pages); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func parseRange(spec string) (Range, error) {
	from, to, isRange := strings.Cut(spec, "-")
	if !isRange {
		to = from
	}
	f, okF := pageNumber(from)
	t, okT := pageNumber(to)
	if !okF || !okT {
		if isRange {
			return Range{}, fmt.Errorf("%w: %q is not N or N-M", ErrBadRange, spec)
		}
		return Range{}, fmt.Errorf("%w: %q is not a page number", ErrBadRange, spec)
	}
	return Range{From: f, To: t}, nil
}

// pageNumber parses a non-empty run of decimal digits. Unlike strconv.Atoi
// it refuses signs, so "1--2" and "+3" are malformed rather than surprising.
func pageNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 { // 9 digits cannot overflow an int and exceed any page count
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (r Range) check(pages int) error {
	switch {
	case r.From < 1:
		return fmt.Errorf("%w: %s: pages are numbered from 1", ErrBadRange, r)
	case r.From > r.To:
		return fmt.Errorf("%w: %s: first page after last page", ErrBadRange, r)
	case r.To > pages:
		return fmt.Errorf("%w: %s: the document has %d pages", ErrBadRange, r, pages)
	}
	return nil
}

// Split returns one PDF per range, each holding exactly the pages of its
// range in order; no ranges means one PDF per page. Ranges may overlap.
//
// It returns the errors of Inspect for b, and an error wrapping ErrBadRange
// if a range lies outside the document or the ranges add up to more than
// MaxPages pages.
func Split(b []byte, ranges []Range) (_ [][]byte, err error) {
	ctx, err := read(b, model.SPLIT)
	if err != nil {
		return nil, err
	}
	if len(ranges) == 0 {
		if ranges, err = ParseRanges(nil, ctx.PageCount); err != nil {
			return nil, err
		}
	}
	total := 0
	for _, r := range ranges {
		if err := r.check(ctx.PageCount); err != nil {
			return nil, err
		}
		if total += r.Pages(); total > MaxPages {
			return nil, fmt.Errorf("%w: the ranges select more than %d pages in total", ErrBadRange, MaxPages)
		}
	}

	defer recoverDamaged(&err)
	// Optimizing once up front shares fonts and images between pages, so
	// each part below copies only what its own pages use, once.
	if err := api.OptimizeContext(ctx); err != nil {
		return nil, damaged(err)
	}
	out := make([][]byte, len(ranges))
	for i, r := range ranges {
		pageNrs := make([]int, 0, r.Pages())
		for p := r.From; p <= r.To; p++ {
			pageNrs = append(pageNrs, p)
		}
		part, err := pdfcpu.ExtractPages(ctx, pageNrs, false)
		if err != nil {
			return nil, fmt.Errorf("%w: extract pages %s: %v", ErrDamaged, r, err)
		}
		var buf bytes.Buffer
		if err := api.WriteContext(part, &buf); err != nil {
			return nil, fmt.Errorf("%w: write pages %s: %v", ErrDamaged, r, err)
		}
		out[i] = buf.Bytes()
	}
	return out, nil
}

var (
	pdfMagic     = []byte("%PDF-")
	eofMarker    = []byte("%%EOF")
	startxrefKey = []byte("startxref")
)

// trailerWindow is how far from the end a reader looks for %%EOF; the PDF
// specification lets writers put that much junk after it.
const trailerWindow = 1024

// read parses and validates b for the pdfcpu command cmd.
func read(b []byte, cmd model.CommandMode) (_ *model.Context, err error) {
	if !bytes.HasPrefix(b, pdfMagic) {
		return nil, ErrNotPDF
	}
	// pdfcpu rebuilds a missing cross-reference table by scanning the file,
	// which can make a cut-off upload look whole; a complete file always
	// ends with "startxref <offset> %%EOF".
	tail := b[max(0, len(b)-trailerWindow):]
	eof := bytes.LastIndex(tail, eofMarker)
	if eof < 0 || !bytes.Contains(tail[:eof], startxrefKey) {
		return nil, fmt.Errorf("%w: no startxref and %%%%EOF at the end (truncated?)", ErrDamaged)
	}

	defer recoverDamaged(&err)
	conf := newConfig()
	conf.Cmd = cmd
	ctx, err := api.ReadContext(bytes.NewReader(b), conf)
	if err != nil {
		return nil, damaged(err)
	}
	// Refuse huge documents before validation walks every page.
	if n, ok := declaredPages(ctx); ok && n > MaxPages {
		return nil, fmt.Errorf("%w: %d pages, at most %d allowed", ErrTooManyPages, n, MaxPages)
	}
	if err := api.ValidateContext(ctx); err != nil {
		return nil, damaged(err)
	}
	switch {
	case ctx.PageCount < 1:
		return nil, fmt.Errorf("%w: no pages", ErrDamaged)
	case ctx.PageCount > MaxPages:
		return nil, fmt.Errorf("%w: %d pages, at most %d allowed", ErrTooManyPages, ctx.PageCount, MaxPages)
	}
	return ctx, nil
}

// declaredPages returns the /Count of the page tree root, which validation
// later checks against the pages it actually finds.
func declaredPages(ctx *model.Context) (int, bool) {
	root, err := ctx.Catalog()
	if err != nil || root == nil {
		return 0, false
	}
	o, ok := root.Find("Pages")
	if !ok {
		return 0, false
	}
	pages, err := ctx.DereferenceDict(o)
	if err != nil || pages == nil {
		return 0, false
	}
	o, ok = pages.Find("Count")
	if !ok {
		return 0, false
	}
	n, err := ctx.DereferenceInteger(o)
	if err != nil || n == nil {
		return 0, false
	}
	return n.Value(), true
}

// damaged classifies an error from pdfcpu. pdfcpu's text goes into the
// message for logs; only our sentinels are wrapped, so the vocabulary stays
// closed.
func damaged(err error) error {
	if errors.Is(err, pdfcpu.ErrWrongPassword) {
		return fmt.Errorf("%w: %v", ErrEncrypted, err)
	}
	return fmt.Errorf("%w: %v", ErrDamaged, err)
}

// recoverDamaged turns a panic inside pdfcpu into ErrDamaged: a malformed
// upload must not take the server down.
func recoverDamaged(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: pdfcpu panicked: %v", ErrDamaged, r)
	}
}

var disableConfigDir sync.Once

// newConfig returns a fresh pdfcpu configuration for reading untrusted PDFs.
func newConfig() *model.Configuration {
	// By default pdfcpu creates and reads a config directory (with fonts and
	// certificates) under the user's home on first use. A server wants
	// neither the side effect nor behaviour that depends on that directory;
	// the switch is process-wide, hence once.
	disableConfigDir.Do(api.DisableConfigDir)
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed // accept what real-world writers produce
	conf.ValidateLinks = false                    // never fetch a URL named by an upload
	conf.Offline = true
	return conf
}

// MakePDF returns a valid PDF of n pages (1..MaxPages), US Letter, each
// showing "Page i" in Helvetica. It is meant for tests and examples.
func MakePDF(n int) ([]byte, error) {
	if n < 1 || n > MaxPages {
		return nil, fmt.Errorf("documents: MakePDF: %d pages, want 1..%d", n, MaxPages)
	}
	// Objects: 1 catalog, 2 page tree, 3 font, then per page i (from 0) a
	// page at 4+2i and its content stream at 5+2i.
	size := 4 + 2*n
	offsets := make([]int, size)
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") // the binary comment marks the file as binary
	obj := func(nr int, body string) {
		offsets[nr] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", nr, body)
	}
	obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
	var kids bytes.Buffer
	for i := range n {
		if i > 0 {
			kids.WriteByte(' ')
		}
		fmt.Fprintf(&kids, "%d 0 R", 4+2*i)
	}
	obj(2, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids.String(), n))
	obj(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	for i := range n {
		page, content := 4+2*i, 5+2*i
		obj(page, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "+
			"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", content))
		text := fmt.Sprintf("BT /F1 48 Tf 72 700 Td (Page %d) Tj ET", i+1)
		obj(content, fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(text), text))
	}
	xref := b.Len()
	// Each entry is exactly 20 bytes, its end of line being " \n".
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", size)
	for _, off := range offsets[1:] {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", size, xref)
	return b.Bytes(), nil
}
