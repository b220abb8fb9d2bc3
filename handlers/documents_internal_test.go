package handlers

import (
	"bytes"
	"errors"
	"mime/multipart"
	"testing"

	"github.com/rolegate/rolegate/problem"
)

// The handler refuses an upload with a field besides file on its own, not
// only because the spec's validator does: the validator runs first in the
// server, so the API test cannot tell the two apart.
func TestReadUploadRefusesOtherFields(t *testing.T) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, _ := w.CreateFormFile("file", "x.pdf")
	part.Write([]byte("%PDF-1.7"))
	w.WriteField("owner_id", "1")
	w.Close()
	_, _, err := readUpload(multipart.NewReader(&b, w.Boundary()))
	var pe *problem.Error
	if !errors.As(err, &pe) || pe.Kind != problem.Invalid {
		t.Fatalf("readUpload() error = %v, want a 400", err)
	}
}

func TestFileName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{`C:\scans\report.pdf`, "report.pdf"},
		{"../../etc/passwd", "passwd.pdf"},
		{"", "document.pdf"},
		{"a\x00b\x1b[31m.pdf", "ab[31m.pdf"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe.pdf"},           // right-to-left override
		{"in\u200Bvoice\u2066x\u2069\uFEFF.pdf", "invoicex.pdf"}, // zero-width space, isolates, BOM
		{"Résumé 履歴書.pdf", "Résumé 履歴書.pdf"},                     // letters stay
		{"\u202E", "document.pdf"},
	}
	for _, tt := range tests {
		if got := fileName(tt.in); got != tt.want {
			t.Errorf("fileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	tests := []struct{ name, want string }{
		{"report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{`say "hi"\.pdf`, `attachment; filename=".pdf"; filename*=UTF-8''.pdf`}, // a backslash is a path separator
		{`say "hi".pdf`, `attachment; filename="say _hi_.pdf"; filename*=UTF-8''say%20_hi_.pdf`},
		{`evil".pdf`, `attachment; filename="evil_.pdf"; filename*=UTF-8''evil_.pdf`},
		{"a\x00b\x1b[31m\u200B\u2066.pdf", `attachment; filename="ab[31m.pdf"; filename*=UTF-8''ab%5B31m.pdf`}, // controls, zero-width, isolates
		{`a\"b.pdf`, `attachment; filename="_b.pdf"; filename*=UTF-8''_b.pdf`},
		{"x\u202Etxt.pdf", `attachment; filename="xtxt.pdf"; filename*=UTF-8''xtxt.pdf`}, // stored before fileName dropped it
		{"100%.pdf", `attachment; filename="100_.pdf"; filename*=UTF-8''100%25.pdf`},
		{"naïve;x=y.pdf", `attachment; filename="na_ve_x_y.pdf"; filename*=UTF-8''na%C3%AFve%3Bx%3Dy.pdf`},
	}
	for _, tt := range tests {
		if got := contentDisposition(tt.name); got != tt.want {
			t.Errorf("contentDisposition(%q)\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
