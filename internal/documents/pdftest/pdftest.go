// Package pdftest builds PDFs for tests, hostile ones included: compression
// bombs and documents whose pages share one large resource.
package pdftest

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Build returns a PDF 1.7 file whose objects are bodies, numbered from 1,
// with a classic cross-reference table. Object 1 must be the catalog.
func Build(bodies ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(bodies)+1)
	for i, body := range bodies {
		offsets[i+1] = writeObject(&b, i+1, body)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets))
	for _, off := range offsets[1:] {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets), xref)
	return b.Bytes()
}

func writeObject(b *bytes.Buffer, nr int, body []byte) int {
	off := b.Len()
	fmt.Fprintf(b, "%d 0 obj\n", nr)
	b.Write(body)
	b.WriteString("\nendobj\n")
	return off
}

// BuildCompressed returns a PDF like Build, except that the objects numbered
// in compressed (not streams) live in an object stream whose decoded content
// is followed by pad zero bytes, so that a large pad makes the object stream
// a compression bomb. The cross-reference table is a stream, as object
// streams require.
func BuildCompressed(compressed []int, pad int64, bodies ...[]byte) []byte {
	return buildCompressed(compressed, pad, -1, bodies...)
}

// buildCompressed is BuildCompressed whose cross-reference stream, if
// xrefPad ≥ 0, is compressed and followed by xrefPad zero bytes.
func buildCompressed(compressed []int, pad, xrefPad int64, bodies ...[]byte) []byte {
	inStream := map[int]int{} // object number -> index in the object stream
	var prolog, objs bytes.Buffer
	for i, nr := range compressed {
		inStream[nr] = i
		fmt.Fprintf(&prolog, "%d %d ", nr, objs.Len())
		objs.Write(bodies[nr-1])
		objs.WriteByte('\n')
	}
	stmNr, xrefNr := len(bodies)+1, len(bodies)+2
	content := io.MultiReader(&prolog, &objs, io.LimitReader(zeros{}, pad))
	stm := Stream(fmt.Sprintf("/Type /ObjStm /N %d /First %d /Filter /FlateDecode", len(compressed), prolog.Len()), Flate(content))

	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, xrefNr+1)
	for i, body := range bodies {
		if _, ok := inStream[i+1]; !ok {
			offsets[i+1] = writeObject(&b, i+1, body)
		}
	}
	offsets[stmNr] = writeObject(&b, stmNr, stm)
	offsets[xrefNr] = b.Len()
	// Entries of 1+4+2 bytes: type, offset or object stream, generation or index.
	var table bytes.Buffer
	for nr := 0; nr <= xrefNr; nr++ {
		var e [7]byte
		switch i, ok := inStream[nr]; {
		case nr == 0:
			e[0] = 0
			binary.BigEndian.PutUint16(e[5:], 65535)
		case ok:
			e[0] = 2
			binary.BigEndian.PutUint32(e[1:], uint32(stmNr))
			binary.BigEndian.PutUint16(e[5:], uint16(i))
		default:
			e[0] = 1
			binary.BigEndian.PutUint32(e[1:], uint32(offsets[nr]))
		}
		table.Write(e[:])
	}
	xref := Stream(fmt.Sprintf("/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R", xrefNr+1), table.Bytes())
	if xrefPad >= 0 {
		xref = Stream(fmt.Sprintf("/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode", xrefNr+1),
			Flate(io.MultiReader(&table, io.LimitReader(zeros{}, xrefPad))))
	}
	writeObject(&b, xrefNr, xref)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", offsets[xrefNr])
	return b.Bytes()
}

// Stream returns the body of a stream object: the dictionary entries dict,
// a /Length and data.
func Stream(dict string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<< %s /Length %d >>\nstream\n", dict, len(data))
	b.Write(data)
	b.WriteString("\nendstream")
	return b.Bytes()
}

// Flate returns what r yields compressed with zlib, as a FlateDecode
// stream holds it.
func Flate(r io.Reader) []byte {
	var b bytes.Buffer
	w, _ := zlib.NewWriterLevel(&b, zlib.BestSpeed) // fast on zeros, and ~1000:1 anyway
	if _, err := io.Copy(w, r); err != nil {
		panic(err) // cannot happen: writing to memory
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Zeros returns n zero bytes compressed with zlib: for large n, a
// compression bomb about n/800 bytes long.
func Zeros(n int64) []byte { return Flate(io.LimitReader(zeros{}, n)) }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Page is the body of a page of the page tree at object 2, with the given
// entries for its /Resources dictionary and itself, e.g. "/Contents 4 0 R".
func Page(resources, entries string) []byte {
	return []byte(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << %s >> %s >>", resources, entries))
}

// Pages is the body of the page tree root listing the page objects kids.
func Pages(kids ...int) []byte {
	refs := make([]string, len(kids))
	for i, k := range kids {
		refs[i] = fmt.Sprintf("%d 0 R", k)
	}
	return []byte(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(refs, " "), len(kids)))
}

// Catalog is the body of a catalog whose page tree is object 2, with extra
// entries.
func Catalog(entries string) []byte {
	return []byte("<< /Type /Catalog /Pages 2 0 R " + entries + " >>")
}

// Bomb returns a one-page PDF holding a FlateDecode stream that inflates to
// n zero bytes, in the place where says: "content" (the page's content
// stream), "contents array" (the second of the page's content streams),
// "metadata" (the catalog's XMP metadata), "object stream" (the object
// stream holding the page), "xref stream" (the cross-reference stream, its
// entries followed by the zeros), "form" (a form XObject the page draws) or
// "image" (an image the page draws).
func Bomb(where string, n int64) []byte {
	const text = "BT /F1 24 Tf 72 700 Td (Bomb) Tj ET"
	font := []byte("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	plain := Stream("", []byte(text))
	fonts := "/Font << /F1 5 0 R >>"
	// Objects: 1 catalog, 2 pages, 3 page, 4 content, 5 font, 6 the bomb.
	switch where {
	case "content":
		return Build(Catalog(""), Pages(3), Page(fonts, "/Contents 4 0 R"), Stream("/Filter /FlateDecode", Zeros(n)), font)
	case "contents array":
		return Build(Catalog(""), Pages(3), Page(fonts, "/Contents [4 0 R 6 0 R]"), plain, font, Stream("/Filter /FlateDecode", Zeros(n)))
	case "metadata":
		return Build(Catalog("/Metadata 6 0 R"), Pages(3), Page(fonts, "/Contents 4 0 R"), plain, font,
			Stream("/Type /Metadata /Subtype /XML /Filter /FlateDecode", Zeros(n)))
	case "object stream":
		return BuildCompressed([]int{3}, n, Catalog(""), Pages(3), Page(fonts, "/Contents 4 0 R"), plain, font)
	case "xref stream":
		return buildCompressed([]int{3}, 0, n, Catalog(""), Pages(3), Page(fonts, "/Contents 4 0 R"), plain, font)
	case "form":
		return Build(Catalog(""), Pages(3), Page(fonts+" /XObject << /X1 6 0 R >>", "/Contents 4 0 R"), Stream("", []byte(text+" /X1 Do")), font,
			Stream("/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Filter /FlateDecode", Zeros(n)))
	case "image":
		side := 1
		for int64(side)*int64(side) < n {
			side *= 2
		}
		return Build(Catalog(""), Pages(3), Page(fonts+" /XObject << /Im 6 0 R >>", "/Contents 4 0 R"), Stream("", []byte(text+" /Im Do")), font,
			Stream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode", side, side), Zeros(int64(side)*int64(side))))
	}
	panic("pdftest: Bomb: no place " + where)
}

// SharedImage returns a PDF of the given number of pages that all draw one
// image of imageBytes random, incompressible bytes: each page split off it
// carries a copy of the image, so its parts together take about pages times
// the source's size.
func SharedImage(pages, imageBytes int) []byte {
	img := make([]byte, imageBytes)
	rand.Read(img)
	bodies := [][]byte{
		Catalog(""),
		nil, // the page tree, once the pages are numbered
		Stream(fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8", imageBytes), img),
		Stream("", []byte("q 612 0 0 792 0 0 cm /Im Do Q")),
	}
	kids := make([]int, pages)
	for i := range kids {
		kids[i] = len(bodies) + 1
		bodies = append(bodies, Page("/XObject << /Im 3 0 R >>", "/Contents 4 0 R"))
	}
	bodies[1] = Pages(kids...)
	return Build(bodies...)
}

// Document returns a valid PDF of n pages (n ≥ 1), US Letter, each showing
// "Page i" in Helvetica.
func Document(n int) []byte {
	// Objects: 1 catalog, 2 page tree, 3 font, then per page i (from 0) a
	// page at 4+2i and its content stream at 5+2i.
	kids := make([]int, n)
	bodies := [][]byte{Catalog(""), nil, []byte("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")}
	for i := range n {
		kids[i] = 4 + 2*i
		bodies = append(bodies,
			Page("/Font << /F1 3 0 R >>", fmt.Sprintf("/Contents %d 0 R", 5+2*i)),
			Stream("", fmt.Appendf(nil, "BT /F1 48 Tf 72 700 Td (Page %d) Tj ET", i+1)))
	}
	bodies[1] = Pages(kids...)
	return Build(bodies...)
}
