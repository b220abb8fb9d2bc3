package documents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// Info is what Inspect learns about a PDF.
type Info struct {
	// Pages is the number of pages, 1..MaxPages.
	Pages int
}

// Inspect checks that b is a readable PDF within the default work bounds
// and counts its pages: Operation.Inspect of the zero Processor.
func Inspect(b []byte) (Info, error) {
	var p Processor
	op, err := p.Begin(context.Background(), 0)
	if err != nil {
		return Info{}, err
	}
	defer op.End()
	return op.Inspect(b)
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

// RangeError reports the page range that ParseRanges or Split refuses. It
// wraps ErrBadRange.
type RangeError struct {
	// Index is the range's position in the caller's list, from 0.
	Index int
	// Spec is the range as given.
	Spec string
	// Reason says what is wrong with it, for people, e.g. "overlaps range
	// 0 (1-3)".
	Reason string
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%v: range %d (%q) %s", ErrBadRange, e.Index, e.Spec, e.Reason)
}

func (e *RangeError) Unwrap() error { return ErrBadRange }

// ParseRanges parses page ranges of a document of the given number of pages.
// Each spec is "N" (one page) or "N-M" (pages N through M), in decimal
// digits with no spaces or signs. Nil or empty specs mean one range per page.
// Ranges must not repeat or overlap, so there are never more ranges than
// pages and no page is copied twice.
//
// Every error wraps ErrBadRange and, but for a pages outside 1..MaxPages, is
// a *RangeError naming the first bad spec in order: a malformed one, a page
// below 1 or above pages, N greater than M, or one that repeats or overlaps
// an earlier one. Its work is bounded by pages, however many specs there
// are.
func ParseRanges(specs []string, pages int) ([]Range, error) {
	if pages < 1 || pages > MaxPages {
		return nil, fmt.Errorf("%w: the document has %d pages, not 1..%d", ErrBadRange, pages, MaxPages)
	}
	if len(specs) == 0 {
		rs := make([]Range, pages)
		for i := range rs {
			rs[i] = Range{From: i + 1, To: i + 1}
		}
		return rs, nil
	}
	c := newRangeChecker(pages)
	for i, spec := range specs {
		r, ok := parseRange(spec)
		if !ok {
			reason := "is not a page number"
			if strings.Contains(spec, "-") {
				reason = "is not N or N-M"
			}
			return nil, &RangeError{Index: i, Spec: spec, Reason: reason}
		}
		if err := c.add(r, spec); err != nil {
			return nil, err
		}
	}
	return c.ranges, nil
}

func parseRange(spec string) (Range, bool) {
	from, to, isRange := strings.Cut(spec, "-")
	if !isRange {
		to = from
	}
	f, okF := pageNumber(from)
	t, okT := pageNumber(to)
	return Range{From: f, To: t}, okF && okT
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

// rangeChecker takes ranges in order and refuses the first that lies
// outside 1..pages or shares a page with an earlier one. Each range it
// accepts covers a page no other does, so it never accepts more ranges than
// pages, and its work is bounded by pages.
type rangeChecker struct {
	pages  int
	owner  []int32 // 1 + the index of the range holding each page; 0 for none
	ranges []Range
	specs  []string
}

func newRangeChecker(pages int) *rangeChecker {
	return &rangeChecker{pages: pages, owner: make([]int32, pages+1)}
}

// add checks r, written as spec, and keeps it.
func (c *rangeChecker) add(r Range, spec string) error {
	i := len(c.ranges)
	bad := func(reason string) error { return &RangeError{Index: i, Spec: spec, Reason: reason} }
	switch {
	case r.From < 1:
		return bad("starts before page 1")
	case r.From > r.To:
		return bad("ends before it starts")
	case r.To > c.pages:
		return bad(fmt.Sprintf("ends after the last page, %d", c.pages))
	}
	for p := r.From; p <= r.To; p++ {
		if j := int(c.owner[p]) - 1; j >= 0 {
			if c.ranges[j] == r {
				return bad(fmt.Sprintf("repeats range %d", j))
			}
			return bad(fmt.Sprintf("overlaps range %d (%s)", j, c.specs[j]))
		}
	}
	for p := r.From; p <= r.To; p++ {
		c.owner[p] = int32(i + 1)
	}
	c.ranges = append(c.ranges, r)
	c.specs = append(c.specs, spec)
	return nil
}

// checkRanges returns the first *RangeError of rs, a document's ranges as
// Split is given them.
func checkRanges(rs []Range, pages int) error {
	c := newRangeChecker(pages)
	for _, r := range rs {
		if err := c.add(r, r.String()); err != nil {
			return err
		}
	}
	return nil
}

var (
	pdfMagic     = []byte("%PDF-")
	eofMarker    = []byte("%%EOF")
	startxrefKey = []byte("startxref")
)

// trailerWindow is how far from the end a reader looks for %%EOF; the PDF
// specification lets writers put that much junk after it.
const trailerWindow = 1024

// sniff refuses what is plainly not a whole PDF, before any parsing.
func sniff(b []byte) error {
	if !bytes.HasPrefix(b, pdfMagic) {
		return ErrNotPDF
	}
	// pdfcpu rebuilds a missing cross-reference table by scanning the file,
	// which can make a cut-off upload look whole; a complete file always
	// ends with "startxref <offset> %%EOF".
	tail := b[max(0, len(b)-trailerWindow):]
	eof := bytes.LastIndex(tail, eofMarker)
	if eof < 0 || !bytes.Contains(tail[:eof], startxrefKey) {
		return fmt.Errorf("%w: no startxref and %%%%EOF at the end (truncated?)", ErrDamaged)
	}
	return nil
}

// read parses and validates b for the pdfcpu command cmd, refusing it if
// the streams pdfcpu will decompress add up to more than maxDecoded bytes.
// Reading stops early when c is done; validation cannot be interrupted.
func read(c context.Context, b []byte, cmd model.CommandMode, maxDecoded int64) (_ *model.Context, err error) {
	if err := sniff(b); err != nil {
		return nil, err
	}
	defer recoverDamaged(&err)
	budget := newDecodeBudget(maxDecoded)
	if err := checkXRefStreams(c, b, budget); err != nil {
		return nil, err
	}
	conf := newConfig()
	conf.Cmd = cmd
	// pdfcpu applies this limit to each object stream it decodes while
	// reading (only its prolog) and validating; checkDecoded charges them
	// all before validation.
	conf.Limits.MaxDecodeBytes = maxDecoded
	ctx, err := pdfcpu.ReadWithContext(c, bytes.NewReader(b), conf)
	if err != nil {
		if cerr := c.Err(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, filter.ErrDecodeLimitExceeded) {
			return nil, fmt.Errorf("%w: a stream decodes to more than %d bytes: %v", ErrTooCostly, maxDecoded, err)
		}
		return nil, damaged(err)
	}
	// Refuse huge documents before validation walks every page.
	if n, ok := declaredPages(ctx); ok && n > MaxPages {
		return nil, fmt.Errorf("%w: %d pages, at most %d allowed", ErrTooManyPages, n, MaxPages)
	}
	if err := checkDecoded(c, ctx, budget); err != nil {
		return nil, err
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

// checkDecoded charges b the streams pdfcpu decompresses when validating
// ctx and extracting its pages, returning ErrTooCostly once b is spent (the
// cross-reference streams read decoded are charged to b before, by
// checkXRefStreams). pdfcpu bounds each of those decodes only by its own 512 MiB, and
// keeps no total: a 64 KB upload whose page content inflates to hundreds of
// megabytes would otherwise cost that much memory and seconds of CPU in a
// split.
//
// Which streams: experiments with a compression bomb placed in turn in
// every kind of stream show that in read, validate (relaxed), optimize,
// ExtractPages and write pdfcpu v0.15 decompresses only cross-reference
// streams (when reading, see checkXRefStreams), object streams
// (when validation first resolves an object inside one), the catalog's
// /Metadata (validation parses the XMP) and the /Contents of the pages a
// part holds (ExtractPages parses them to find the resources they use).
// Images, fonts, forms, thumbnails, annotations' appearances, ICC profiles
// and embedded files are copied as they are. So checkDecoded charges every
// object stream once and, per dictionary that names one, every /Contents
// and /Metadata stream: a content stream shared by many pages is charged
// per page, as pdfcpu decodes it per page. It charges the output of each
// filter of a stream's pipeline, so chained filters cannot multiply the
// work unseen, and a stream without filters for its length, which pdfcpu
// parses all the same. It gives up as soon as the budget is spent: a bomb is
// decoded no further than the budget. It streams each stream through
// counting readers and keeps none of their output (see decodedSize), so
// this costs time (bounded by limit), not memory.
func checkDecoded(c context.Context, ctx *model.Context, b *decodeBudget) error {
	nrs := make([]int, 0, len(ctx.Table))
	for nr := range ctx.Table {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	// Object streams first: resolving an object inside one below decodes it.
	for _, nr := range nrs {
		if e := ctx.Table[nr]; e == nil || e.Free {
			continue
		}
		if osd, ok := ctx.Table[nr].Object.(types.ObjectStreamDict); ok {
			if err := b.charge(nr, osd.StreamDict); err != nil {
				return err
			}
		}
	}
	for _, nr := range nrs {
		if err := c.Err(); err != nil {
			return err
		}
		e := ctx.Table[nr]
		if e == nil || e.Free {
			continue
		}
		o := e.Object
		if l, ok := o.(types.LazyObjectStreamObject); ok {
			var err error
			if o, err = l.DecodedObject(c); err != nil {
				continue // validation reports it
			}
		}
		var d types.Dict
		switch o := o.(type) {
		case types.Dict:
			d = o
		case types.StreamDict:
			d = o.Dict
		default:
			continue
		}
		for _, key := range [...]string{"Contents", "Metadata"} {
			v, ok := d.Find(key)
			if !ok {
				continue
			}
			if err := b.chargeRefs(ctx, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeBudget is what a document's decoding has left to spend, shared by
// checkXRefStreams and checkDecoded.
type decodeBudget struct {
	left, limit int64
	sizes       map[int]int64 // decoded size of the streams seen, by object number
}

func newDecodeBudget(limit int64) *decodeBudget {
	return &decodeBudget{left: limit, limit: limit, sizes: map[int]int64{}}
}

// chargeOffset spends the decoded size of the cross-reference stream at
// offset off of the file.
func (b *decodeBudget) chargeOffset(off int, sd types.StreamDict) error {
	if b.left -= decodedSize(sd, max(b.left, 0)); b.left < 0 {
		return fmt.Errorf("%w: its streams decode to more than %d bytes (the cross-reference stream at offset %d)", ErrTooCostly, b.limit, off)
	}
	return nil
}

// chargeRefs charges the stream v refers to, or each stream of the array
// it is or refers to.
func (b *decodeBudget) chargeRefs(ctx *model.Context, v types.Object) error {
	if ir, ok := v.(types.IndirectRef); ok {
		e, found := ctx.FindTableEntryForIndRef(&ir)
		if !found || e.Free {
			return nil
		}
		if sd, ok := e.Object.(types.StreamDict); ok {
			return b.charge(ir.ObjectNumber.Value(), sd)
		}
		v = e.Object
	}
	a, ok := v.(types.Array)
	if !ok {
		return nil
	}
	for _, el := range a {
		ir, ok := el.(types.IndirectRef)
		if !ok {
			continue
		}
		e, found := ctx.FindTableEntryForIndRef(&ir)
		if !found || e.Free {
			continue
		}
		if sd, ok := e.Object.(types.StreamDict); ok {
			if err := b.charge(ir.ObjectNumber.Value(), sd); err != nil {
				return err
			}
		}
	}
	return nil
}

// charge spends the decoded size of stream nr, decoding it (once) to learn
// the size.
func (b *decodeBudget) charge(nr int, sd types.StreamDict) error {
	size, ok := b.sizes[nr]
	if !ok {
		size = decodedSize(sd, max(b.left, 0))
		b.sizes[nr] = size
	}
	if b.left -= size; b.left < 0 {
		return fmt.Errorf("%w: its streams decode to more than %d bytes (obj#%d)", ErrTooCostly, b.limit, nr)
	}
	return nil
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
