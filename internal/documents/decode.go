package documents

import (
	"bufio"
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"encoding/ascii85"
	"errors"
	"image/jpeg"
	"io"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
	"golang.org/x/image/ccitt"
	tifflzw "golang.org/x/image/tiff/lzw"
)

// decodedSize returns the bytes pdfcpu's decoding of sd would produce, the
// output of each filter of its pipeline added up (its length for a stream
// without filters), or a number over limit as soon as that is exceeded.
//
// pdfcpu's filters each inflate a whole stream into memory and check their
// limit afterwards, so asking them only how big a stream is would cost up
// to twice the limit in memory. decodedSize instead streams the raw bytes
// through one reader per filter, each counted against limit, and throws the
// output away: it holds a few windows of 32 KiB whatever the stream
// inflates to, and stops inflating at limit. pdfcpu decodes each filter to
// its end before the next starts, so every filter is read to its end here
// too, even where the next one stops early or fails. Decoding that fails
// costs what was decoded up to the failure: validation or extraction will
// report it.
func decodedSize(sd types.StreamDict, limit int64) int64 {
	if len(sd.FilterPipeline) == 0 {
		return int64(len(sd.Raw))
	}
	m := &meter{left: limit}
	var r io.Reader = bytes.NewReader(sd.Raw)
	stages := make([]io.Reader, 0, len(sd.FilterPipeline))
	for _, f := range sd.FilterPipeline {
		d := decoder(f, r, sd, m)
		if d == nil {
			break
		}
		r = &meteredReader{r: d, m: m}
		stages = append(stages, r)
	}
	for i := len(stages) - 1; i >= 0 && !m.over(); i-- {
		_, _ = io.Copy(io.Discard, stages[i]) // a failure costs what came before it
	}
	return limit - m.left
}

// meter is what a stream's decoding has left to spend.
type meter struct{ left int64 }

func (m *meter) over() bool { return m.left < 0 }

var errOverBudget = errors.New("documents: decode budget spent")

// meteredReader charges what r yields to m, and fails once m is spent.
type meteredReader struct {
	r io.Reader
	m *meter
}

func (r *meteredReader) Read(p []byte) (int, error) {
	if r.m.over() {
		return 0, errOverBudget
	}
	n, err := r.r.Read(p)
	if r.m.left -= int64(n); r.m.over() {
		return n, errOverBudget
	}
	return n, err
}

// decoder returns a reader of what filter f makes of r, as pdfcpu's filter
// of that name decodes it (predictors aside: their output is never longer
// than their input, so the input is what is charged), or nil where pdfcpu
// decodes no further: an image format kept as it is, a filter it does not
// know, or input the filter refuses at once. A DCT image that pdfcpu does
// decode is charged what pdfcpu checks it against, four bytes per pixel,
// without decoding it.
func decoder(f types.PDFFilter, r io.Reader, sd types.StreamDict, m *meter) io.Reader {
	parm := func(name string, def int) int {
		switch v := f.DecodeParms[name].(type) {
		case types.Integer:
			return v.Value()
		case types.Boolean:
			if v.Value() {
				return 1
			}
			return 0
		}
		return def
	}
	switch f.Name {
	case filter.Flate:
		zr, err := zlib.NewReader(r)
		if err != nil {
			return nil
		}
		return zr
	case filter.LZW:
		if parm("Predictor", 1) > 1 {
			return nil // pdfcpu refuses it
		}
		if parm("EarlyChange", 1) == 1 {
			return tifflzw.NewReader(r, tifflzw.MSB, 8) // TIFF's off-by-one is PDF's early change
		}
		return lzw.NewReader(r, lzw.MSB, 8)
	case filter.RunLength:
		return &runLengthReader{r: bufio.NewReader(r)}
	case filter.ASCIIHex:
		return &asciiHexReader{r: bufio.NewReader(r)}
	case filter.ASCII85:
		return ascii85Reader(r)
	case filter.CCITTFax:
		k := parm("K", 0)
		rows := parm("Rows", -1)
		if rows < 0 {
			if h := sd.IntEntry("Height"); h != nil {
				rows = *h
			}
		}
		if k > 0 || rows < 0 {
			return nil // pdfcpu refuses it
		}
		mode := ccitt.Group3
		if k < 0 {
			mode = ccitt.Group4
		}
		opts := &ccitt.Options{Invert: parm("BlackIs1", 0) == 1, Align: parm("EncodedByteAlign", 0) == 1}
		return ccitt.NewReader(r, ccitt.MSB, mode, parm("Columns", 1728), rows, opts)
	case filter.DCT:
		if sd.CSComponents != 4 {
			return nil // kept as it is
		}
		cfg, err := jpeg.DecodeConfig(r)
		if err != nil {
			return nil
		}
		m.left -= 4 * int64(cfg.Width) * int64(cfg.Height)
		return nil
	}
	return nil
}

// runLengthReader decodes RunLengthDecode (PDF 32000-1 §7.4.5) as it is
// read.
type runLengthReader struct {
	r      *bufio.Reader
	copyN  int  // literal bytes still to copy
	repeat int  // times b is still to be repeated
	b      byte // the byte of the current run
	done   bool
}

func (d *runLengthReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case d.repeat > 0:
			k := min(d.repeat, len(p)-n)
			for i := range k {
				p[n+i] = d.b
			}
			n += k
			d.repeat -= k
		case d.copyN > 0:
			k, err := d.r.Read(p[n : n+min(d.copyN, len(p)-n)])
			n += k
			d.copyN -= k
			if err != nil {
				return n, eofAsUnexpected(err)
			}
		case d.done:
			return n, io.EOF
		default:
			c, err := d.r.ReadByte()
			if err != nil || c == 0x80 {
				d.done = true
				continue
			}
			if c < 0x80 {
				d.copyN = int(c) + 1
				continue
			}
			if d.b, err = d.r.ReadByte(); err != nil {
				return n, io.ErrUnexpectedEOF
			}
			d.repeat = 257 - int(c)
		}
	}
	return n, nil
}

func eofAsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// asciiHexReader decodes ASCIIHexDecode as it is read: white space is
// skipped, '>' ends the data, and a last odd digit counts as followed by 0.
type asciiHexReader struct {
	r    *bufio.Reader
	done bool
}

func (d *asciiHexReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !d.done {
		hi, ok, err := d.digit()
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		lo, ok, err := d.digit()
		if err != nil {
			return n, err
		}
		if !ok {
			lo = 0
		}
		p[n] = hi<<4 | lo
		n++
	}
	if d.done && n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// digit returns the next hexadecimal digit, or false at the end of the data.
func (d *asciiHexReader) digit() (byte, bool, error) {
	for {
		c, err := d.r.ReadByte()
		switch {
		case err != nil || c == '>':
			d.done = true
			return 0, false, nil
		case c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ':
			continue
		case '0' <= c && c <= '9':
			return c - '0', true, nil
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true, nil
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true, nil
		}
		d.done = true
		return 0, false, errors.New("documents: ASCIIHexDecode: not a hexadecimal digit")
	}
}

// ascii85Reader decodes ASCII85Decode as it is read, up to its "~>".
func ascii85Reader(r io.Reader) io.Reader {
	return ascii85.NewDecoder(&untilTilde{r: bufio.NewReader(r)})
}

// untilTilde reads r up to its first '~', which starts ASCII85's end of
// data.
type untilTilde struct {
	r    *bufio.Reader
	done bool
}

func (u *untilTilde) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		c, err := u.r.ReadByte()
		if err != nil || c == '~' {
			u.done = true
			break
		}
		p[n] = c
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
