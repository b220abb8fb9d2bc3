package documents_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/rolegate/rolegate/internal/documents"
	"github.com/rolegate/rolegate/internal/documents/pdftest"
)

var pageLabel = regexp.MustCompile(`\(Page (\d+)\)`)

// pageLabels returns the label pdftest.Document drew on each page of b, in order, so
// a test can tell which source pages a split part holds.
func pageLabels(tb testing.TB, b []byte) []string {
	tb.Helper()
	ctx, err := api.ReadAndValidate(bytes.NewReader(b), model.NewDefaultConfiguration())
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	labels := make([]string, 0, ctx.PageCount)
	for p := 1; p <= ctx.PageCount; p++ {
		r, err := pdfcpu.ExtractPageContent(ctx, p)
		if err != nil {
			tb.Fatalf("page %d content: %v", p, err)
		}
		content, err := io.ReadAll(r)
		if err != nil {
			tb.Fatal(err)
		}
		m := pageLabel.FindSubmatch(content)
		if m == nil {
			tb.Fatalf("page %d: no label in %q", p, content)
		}
		labels = append(labels, string(m[1]))
	}
	return labels
}

func TestMain(m *testing.M) {
	// pageLabels reads with pdfcpu directly; keep it out of $HOME too.
	api.DisableConfigDir()
	m.Run()
}

func TestInspect(t *testing.T) {
	three := pdftest.Document(3)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	// Cut off at the end but given a plausible trailer back, so only
	// pdfcpu's own checks can notice the missing objects.
	cut := bytes.Clone(three[:len(three)/2])
	cut = append(cut, "\nstartxref\n0\n%%EOF\n"...)

	tests := []struct {
		name    string
		in      []byte
		want    documents.Info
		wantErr error
	}{
		{"one page", pdftest.Document(1), documents.Info{Pages: 1}, nil},
		{"three pages", three, documents.Info{Pages: 3}, nil},
		{"max pages", pdftest.Document(documents.MaxPages), documents.Info{Pages: documents.MaxPages}, nil},
		{"empty", nil, documents.Info{}, documents.ErrNotPDF},
		{"text", []byte("hello"), documents.Info{}, documents.ErrNotPDF},
		{"png", png, documents.Info{}, documents.ErrNotPDF},
		{"leading junk", append([]byte("junk"), three...), documents.Info{}, documents.ErrNotPDF},
		{"magic only", []byte("%PDF-1.7\n"), documents.Info{}, documents.ErrDamaged},
		{"first half", three[:len(three)/2], documents.Info{}, documents.ErrDamaged},
		{"all but the last byte of %%EOF", three[:len(three)-2], documents.Info{}, documents.ErrDamaged},
		{"first half with a trailer", cut, documents.Info{}, documents.ErrDamaged},
		{"garbage body", []byte("%PDF-1.4\n" + strings.Repeat("x", 2000) + "\nstartxref\n9\n%%EOF\n"), documents.Info{}, documents.ErrDamaged},
		{"too many pages", tooManyPages(t), documents.Info{}, documents.ErrTooManyPages},
		{"password", encrypt(t, three), documents.Info{}, documents.ErrEncrypted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // pdfcpu must be safe for concurrent requests
			got, err := documents.Inspect(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Inspect() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Inspect() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// tooManyPages returns a PDF whose page tree claims MaxPages+1 pages, which
// Inspect must refuse before validation walks them.
func tooManyPages(tb testing.TB) []byte {
	tb.Helper()
	b := pdftest.Document(1)
	// Same length, so the xref offsets stay right.
	old := []byte("/Type /Pages /Kids [4 0 R] /Count 1 >>")
	new := []byte("/Type/Pages/Kids[4 0 R]/Count 10001 >>")
	if len(old) != len(new) || !bytes.Contains(b, old) {
		tb.Fatalf("cannot patch the page count of %q", b)
	}
	return bytes.Replace(b, old, new, 1)
}

// encrypt returns b protected by a user password.
func encrypt(tb testing.TB, b []byte) []byte {
	tb.Helper()
	conf := model.NewAESConfiguration("secret", "owner", 256)
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(b), &out, conf); err != nil {
		tb.Fatalf("encrypt: %v", err)
	}
	return out.Bytes()
}

func TestDocument(t *testing.T) {
	if diff := cmp.Diff([]string{"1", "2", "3"}, pageLabels(t, pdftest.Document(3))); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRanges(t *testing.T) {
	thousandOnes := slices.Repeat([]string{"1"}, 1000)
	tests := []struct {
		name    string
		specs   []string
		pages   int
		want    []documents.Range
		wantErr *documents.RangeError // nil: no error, or one that is not a *RangeError when wantBad
		wantBad bool
	}{
		{"nil is per page", nil, 3, []documents.Range{{1, 1}, {2, 2}, {3, 3}}, nil, false},
		{"empty is per page", []string{}, 2, []documents.Range{{1, 1}, {2, 2}}, nil, false},
		{"ranges and pages", []string{"1-2", "3"}, 3, []documents.Range{{1, 2}, {3, 3}}, nil, false},
		{"order kept", []string{"3", "1-2"}, 3, []documents.Range{{3, 3}, {1, 2}}, nil, false},
		{"leading zeros", []string{"01-003"}, 3, []documents.Range{{1, 3}}, nil, false},
		{"every page once", []string{"2", "3", "1"}, 3, []documents.Range{{2, 2}, {3, 3}, {1, 1}}, nil, false},
		{"zero", []string{"0"}, 3, nil, &documents.RangeError{Index: 0, Spec: "0", Reason: "starts before page 1"}, true},
		{"past the end", []string{"4"}, 3, nil, &documents.RangeError{Index: 0, Spec: "4", Reason: "ends after the last page, 3"}, true},
		{"range past the end", []string{"1", "2-4"}, 3, nil, &documents.RangeError{Index: 1, Spec: "2-4", Reason: "ends after the last page, 3"}, true},
		{"backwards", []string{"3-1"}, 3, nil, &documents.RangeError{Index: 0, Spec: "3-1", Reason: "ends before it starts"}, true},
		{"letter", []string{"a"}, 3, nil, &documents.RangeError{Index: 0, Spec: "a", Reason: "is not a page number"}, true},
		{"open end", []string{"1-"}, 3, nil, &documents.RangeError{Index: 0, Spec: "1-", Reason: "is not N or N-M"}, true},
		{"open start", []string{"-2"}, 3, nil, &documents.RangeError{Index: 0, Spec: "-2", Reason: "is not N or N-M"}, true},
		{"empty spec", []string{""}, 3, nil, &documents.RangeError{Index: 0, Spec: "", Reason: "is not a page number"}, true},
		{"spaces", []string{" 1"}, 3, nil, &documents.RangeError{Index: 0, Spec: " 1", Reason: "is not a page number"}, true},
		{"sign", []string{"+1"}, 3, nil, &documents.RangeError{Index: 0, Spec: "+1", Reason: "is not a page number"}, true},
		{"double dash", []string{"1--2"}, 3, nil, &documents.RangeError{Index: 0, Spec: "1--2", Reason: "is not N or N-M"}, true},
		{"three parts", []string{"1-2-3"}, 3, nil, &documents.RangeError{Index: 0, Spec: "1-2-3", Reason: "is not N or N-M"}, true},
		{"overflow", []string{"99999999999999999999"}, 3, nil, &documents.RangeError{Index: 0, Spec: "99999999999999999999", Reason: "is not a page number"}, true},
		{"one bad among good", []string{"1", "x", "2"}, 3, nil, &documents.RangeError{Index: 1, Spec: "x", Reason: "is not a page number"}, true},
		// The amplification of issue #8: the same page over and over.
		{"repeated", []string{"1", "2", "1"}, 3, nil, &documents.RangeError{Index: 2, Spec: "1", Reason: "repeats range 0"}, true},
		{"repeated range", []string{"1-2", "1-2"}, 3, nil, &documents.RangeError{Index: 1, Spec: "1-2", Reason: "repeats range 0"}, true},
		{"same range written twice", []string{"1-1", "01"}, 3, nil, &documents.RangeError{Index: 1, Spec: "01", Reason: "repeats range 0"}, true},
		{"overlapping", []string{"1-2", "2-3"}, 3, nil, &documents.RangeError{Index: 1, Spec: "2-3", Reason: "overlaps range 0 (1-2)"}, true},
		{"inside another", []string{"3", "1-3"}, 3, nil, &documents.RangeError{Index: 1, Spec: "1-3", Reason: "overlaps range 0 (3)"}, true},
		{"more ranges than pages", []string{"1", "2", "3", "1"}, 3, nil, &documents.RangeError{Index: 3, Spec: "1", Reason: "repeats range 0"}, true},
		{"the same page a thousand times", thousandOnes, 3, nil, &documents.RangeError{Index: 1, Spec: "1", Reason: "repeats range 0"}, true},
		{"no pages", nil, 0, nil, nil, true},
		{"too many pages", nil, documents.MaxPages + 1, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := documents.ParseRanges(tt.specs, tt.pages)
			if tt.wantBad != errors.Is(err, documents.ErrBadRange) {
				t.Fatalf("ParseRanges(%q, %d) error = %v, want ErrBadRange: %v", tt.specs, tt.pages, err, tt.wantBad)
			}
			if tt.wantErr != nil {
				var re *documents.RangeError
				if !errors.As(err, &re) {
					t.Fatalf("error %v is not a *RangeError", err)
				}
				if diff := cmp.Diff(tt.wantErr, re); diff != "" {
					t.Errorf("RangeError mismatch (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRanges(%q, %d) mismatch (-want +got):\n%s", tt.specs, tt.pages, diff)
			}
		})
	}
}

// inspect runs Inspect as an operation of p.
func inspect(p *documents.Processor, b []byte) (documents.Info, error) {
	op, err := p.Begin(context.Background(), 1)
	if err != nil {
		return documents.Info{}, err
	}
	defer op.End()
	return op.Inspect(b)
}

// split runs Split as an operation of p and returns the parts it passed on.
func split(p *documents.Processor, b []byte, ranges []documents.Range) ([][]byte, error) {
	op, err := p.Begin(context.Background(), 1)
	if err != nil {
		return nil, err
	}
	defer op.End()
	var parts [][]byte
	err = op.Split(b, ranges, func(i int, pdf []byte) error {
		if i != len(parts) {
			return fmt.Errorf("part %d after %d parts", i, len(parts))
		}
		parts = append(parts, bytes.Clone(pdf))
		return nil
	})
	return parts, err
}

func TestSplit(t *testing.T) {
	three := pdftest.Document(3)
	tests := []struct {
		name    string
		in      []byte
		ranges  []documents.Range
		want    [][]string // page labels of each part
		wantErr error
	}{
		{"nil is per page", three, nil, [][]string{{"1"}, {"2"}, {"3"}}, nil},
		{"two parts", three, mustParse(t, []string{"1-2", "3"}, 3), [][]string{{"1", "2"}, {"3"}}, nil},
		{"whole", three, []documents.Range{{1, 3}}, [][]string{{"1", "2", "3"}}, nil},
		{"out of order", three, []documents.Range{{2, 3}, {1, 1}}, [][]string{{"2", "3"}, {"1"}}, nil},
		{"overlapping", three, []documents.Range{{2, 3}, {1, 2}}, nil, documents.ErrBadRange},
		{"repeated", pdftest.Document(2), repeat(documents.Range{1, 1}, 2), nil, documents.ErrBadRange},
		{"past the end", three, []documents.Range{{3, 4}}, nil, documents.ErrBadRange},
		{"zero", three, []documents.Range{{0, 1}}, nil, documents.ErrBadRange},
		{"backwards", three, []documents.Range{{2, 1}}, nil, documents.ErrBadRange},
		{"not a PDF", []byte("hello"), nil, nil, documents.ErrNotPDF},
		{"truncated", three[:len(three)/2], nil, nil, documents.ErrDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // pdfcpu must be safe for concurrent requests
			parts, err := split(&documents.Processor{}, tt.in, tt.ranges)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Split() error = %v, want %v", err, tt.wantErr)
			}
			var got [][]string
			for i, p := range parts {
				info, err := documents.Inspect(p)
				if err != nil {
					t.Fatalf("part %d: Inspect: %v", i, err)
				}
				labels := pageLabels(t, p)
				if info.Pages != len(labels) {
					t.Errorf("part %d: Inspect says %d pages, content has %d", i, info.Pages, len(labels))
				}
				got = append(got, labels)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split() pages mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The parts of a split together take at most MaxSplitGrowth times the
// source: pages sharing one large image each carry a copy of it, and the
// part that would pass the bound is never handed to the caller.
func TestSplitByteCap(t *testing.T) {
	t.Parallel()
	const pages, image = 10, 256 << 10
	src := pdftest.SharedImage(pages, image)
	parts, err := split(&documents.Processor{}, src, nil)
	if !errors.Is(err, documents.ErrTooLarge) {
		t.Fatalf("Split() error = %v, want ErrTooLarge", err)
	}
	total := 0
	for _, p := range parts {
		total += len(p)
		if len(p) < image {
			t.Errorf("a part of %d bytes: the image was not copied, the test proves nothing", len(p))
		}
	}
	if len(parts) != documents.MaxSplitGrowth || total > documents.MaxSplitGrowth*len(src) {
		t.Errorf("got %d parts of %d bytes from %d bytes, want %d parts within %d times", len(parts), total, len(src), documents.MaxSplitGrowth, documents.MaxSplitGrowth)
	}
	// A split within the bound passes.
	parts, err = split(&documents.Processor{}, src, []documents.Range{{1, 3}, {4, 10}})
	if err != nil || len(parts) != 2 {
		t.Errorf("Split(1-3, 4-10) = %d parts, %v; want 2, nil", len(parts), err)
	}
}

// An error from the callback stops the split and comes back as it is.
func TestSplitCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	calls := 0
	op, err := (&documents.Processor{}).Begin(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer op.End()
	err = op.Split(pdftest.Document(3), nil, func(int, []byte) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("Split() = %v after %d calls; want the callback's error after 1", err, calls)
	}
}

// Compression bombs are refused wherever pdfcpu would inflate them, having
// been decoded no further than the budget; streams pdfcpu copies as they
// are (images, forms) may inflate to any size, as real scans do.
func TestDecodedBytesBound(t *testing.T) {
	const budget, bomb = 1 << 20, 16 << 20
	p := &documents.Processor{MaxDecodedBytes: budget}
	tests := []struct {
		where   string
		wantErr error
	}{
		{"content", documents.ErrTooCostly},
		{"contents array", documents.ErrTooCostly},
		{"metadata", documents.ErrTooCostly},
		{"object stream", documents.ErrTooCostly},
		{"xref stream", documents.ErrTooCostly},
		{"form", nil},
		{"image", nil},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			t.Parallel()
			pdf := pdftest.Bomb(tt.where, bomb)
			if _, err := inspect(p, pdf); !errors.Is(err, tt.wantErr) {
				t.Errorf("Inspect() error = %v, want %v", err, tt.wantErr)
			}
			parts, err := split(p, pdf, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Split() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(parts) != 1 {
				t.Errorf("Split() = %d parts, want 1", len(parts))
			}
			// Within a larger budget the same document is fine.
			if _, err := inspect(&documents.Processor{MaxDecodedBytes: 2 * bomb}, pdf); err != nil {
				t.Errorf("Inspect() with a budget of %d: %v", 2*bomb, err)
			}
		})
	}
}

// A content stream that many pages share is charged for each page, since
// pdfcpu decodes it for each page it extracts.
func TestDecodedBytesBoundSharedContent(t *testing.T) {
	t.Parallel()
	const pages, content = 64, 64 << 10
	bodies := [][]byte{pdftest.Catalog(""), nil, pdftest.Stream("/Filter /FlateDecode", pdftest.Zeros(content))}
	kids := make([]int, pages)
	for i := range kids {
		kids[i] = len(bodies) + 1
		bodies = append(bodies, pdftest.Page("", "/Contents 3 0 R"))
	}
	bodies[1] = pdftest.Pages(kids...)
	pdf := pdftest.Build(bodies...)
	if _, err := inspect(&documents.Processor{MaxDecodedBytes: pages * content}, pdf); err != nil {
		t.Errorf("Inspect() within the budget: %v", err)
	}
	if _, err := inspect(&documents.Processor{MaxDecodedBytes: pages*content - 1}, pdf); !errors.Is(err, documents.ErrTooCostly) {
		t.Errorf("Inspect() one byte over the budget: %v, want ErrTooCostly", err)
	}
}

func mustParse(tb testing.TB, specs []string, pages int) []documents.Range {
	tb.Helper()
	rs, err := documents.ParseRanges(specs, pages)
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func repeat(r documents.Range, n int) []documents.Range {
	rs := make([]documents.Range, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

func TestRangeString(t *testing.T) {
	for _, r := range []documents.Range{{1, 1}, {2, 5}} {
		got, err := documents.ParseRanges([]string{r.String()}, 5)
		if err != nil || len(got) != 1 || got[0] != r {
			t.Errorf("ParseRanges(%q) = %v, %v; want [%v]", r.String(), got, err, r)
		}
	}
}

// MustOpenStore opens a Store on a fresh directory and returns it with the
// directory; the Store is closed when tb ends.
func MustOpenStore(tb testing.TB) (*documents.Store, string) {
	tb.Helper()
	dir := tb.TempDir()
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}
	s, err := documents.OpenStore(tb.Context(), u.String())
	if err != nil {
		tb.Fatalf("OpenStore: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

func TestStore(t *testing.T) {
	ctx := t.Context()
	s, dir := MustOpenStore(t)
	pdf := pdftest.Document(2)
	key := documents.NewKey()

	mustExist := func(want bool) {
		t.Helper()
		r, _, err := s.Get(ctx, key)
		if err == nil {
			r.Close()
		}
		if ok := err == nil; ok != want || !ok && !errors.Is(err, documents.ErrNotFound) {
			t.Fatalf("Get(%q): %v; want it to exist: %v", key, err, want)
		}
	}
	mustGet := func(want []byte) {
		t.Helper()
		r, size, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("Get(%q) = %d bytes (size %d), want %d bytes", key, len(got), size, len(want))
		}
	}

	mustExist(false)
	if err := s.Put(ctx, key, pdf); err != nil {
		t.Fatalf("Put: %v", err)
	}
	mustExist(true)
	mustGet(pdf)

	// Replacing is allowed and complete.
	other := pdftest.Document(1)
	if err := s.Put(ctx, key, other); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	mustGet(other)

	if n := strayFiles(t, dir); len(n) > 0 {
		t.Errorf("temporary files left in the bucket: %q", n)
	}
	// The blob sits under the key, in a directory of its own.
	if _, err := fs.Stat(os.DirFS(dir), key); err != nil {
		t.Errorf("blob not at its key: %v", err)
	}

	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustExist(false)
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, documents.ErrNotFound) {
		t.Errorf("Get of a deleted key error = %v, want ErrNotFound", err)
	}
}

func TestStoreMissing(t *testing.T) {
	ctx := t.Context()
	s, _ := MustOpenStore(t)
	tests := []struct {
		name string
		key  string
	}{
		{"fresh key", documents.NewKey()},
		{"top level", "nothing.pdf"},
		{"directory", "documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, size, err := s.Get(ctx, tt.key)
			if !errors.Is(err, documents.ErrNotFound) {
				t.Errorf("Get() error = %v, want ErrNotFound", err)
			}
			if r != nil || size != 0 {
				t.Errorf("Get() = %v, %d; want nil, 0", r, size)
			}
			if err := s.Delete(ctx, tt.key); err != nil {
				t.Errorf("Delete() = %v, want nil", err)
			}
		})
	}
	// A directory exists for "documents" only once a key lives in it.
	if err := s.Put(ctx, "documents/x.pdf", pdftest.Document(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "documents"); !errors.Is(err, documents.ErrNotFound) {
		t.Errorf("Get(directory) error = %v, want ErrNotFound", err)
	}
}

func TestStoreCanceledPut(t *testing.T) {
	s, dir := MustOpenStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	key := documents.NewKey()
	if err := s.Put(ctx, key, pdftest.Document(1)); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	if _, _, err := s.Get(t.Context(), key); !errors.Is(err, documents.ErrNotFound) {
		t.Errorf("Get() after a failed Put = %v, want ErrNotFound", err)
	}
	if n := strayFiles(t, dir); len(n) > 0 {
		t.Errorf("temporary files left in the bucket: %q", n)
	}
}

func TestOpenStore(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"mem", "mem://", false},
		{"file, created", "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "a", "b")) + "?create_dir=true", false},
		{"file, missing dir", "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "missing")), true},
		{"unregistered scheme", "s3://bucket", true},
		{"bad url", "://", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := documents.OpenStore(t.Context(), tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("OpenStore(%q) error = %v, wantErr %v", tt.url, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer s.Close()
			key := documents.NewKey()
			if err := s.Put(t.Context(), key, []byte("%PDF-")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			r, _, err := s.Get(t.Context(), key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			r.Close()
		})
	}
}

func TestNewKey(t *testing.T) {
	re := regexp.MustCompile(`^documents/[0-9a-f]{32}\.pdf$`)
	seen := map[string]bool{}
	for range 100 {
		k := documents.NewKey()
		if !re.MatchString(k) {
			t.Fatalf("NewKey() = %q, want documents/<32 hex>.pdf", k)
		}
		if seen[k] {
			t.Fatalf("NewKey() repeated %q", k)
		}
		seen[k] = true
	}
}

// strayFiles returns the files under dir that are neither a blob nor its
// attribute sidecar.
func strayFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var stray []string
	err := fs.WalkDir(os.DirFS(dir), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(path, ".pdf") && !strings.HasSuffix(path, ".pdf.attrs") {
			stray = append(stray, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return stray
}
