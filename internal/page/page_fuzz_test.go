package page

import (
	"encoding/base64"
	"testing"
	"time"
)

// FuzzParse feeds Parse arbitrary cursors. It must not panic; it either
// refuses a cursor with ErrBadCursor or accepts one that String spells
// exactly so, naming an id of 1 or more and a time PostgreSQL stores. Run:
// make fuzz.
func FuzzParse(f *testing.F) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		Cursor{ID: 1}.String(),
		Cursor{ID: 9223372036854775807}.String(),
		Cursor{At: time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC), ID: 42}.String(),
		Cursor{At: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: 7}.String(),
		"", "=", "not base64!", "a", "ab", "abc", "\x00", "\xff\xfe",
		b64("k0.1") + "=", base64.URLEncoding.EncodeToString([]byte("k0.12")),
		base64.StdEncoding.EncodeToString([]byte("k1.1>?")),
		b64("x0.1"), b64("k0."), b64("k.1"), b64("k0.x"), b64("k0.0"), b64("k0.-1"), b64("k0.+1"),
		b64("k00.1"), b64("k-1.1"), b64("k1.01"), b64("k1.1.1"), b64("k 1.1"), b64("k1.1\x00"),
		b64("k9223372036854775807.1"), b64("k-9223372036854775808.1"), b64("k253402300800000000.1"),
		b64("k1.99999999999999999999"), b64("k-62135596800000000.1"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := Parse(&s)
		if err != nil {
			if err != ErrBadCursor || ok {
				t.Fatalf("Parse(%q) = _, %v, %v; want ErrBadCursor alone", s, ok, err)
			}
			return
		}
		if !ok {
			t.Fatalf("Parse(%q) = _, false, nil; only a nil cursor is the first page", s)
		}
		if got := c.String(); got != s {
			t.Fatalf("Parse(%q) = %+v, whose String() is %q", s, c, got)
		}
		if c.ID < 1 {
			t.Fatalf("Parse(%q) = %+v: id below 1", s, c)
		}
		if !c.At.IsZero() {
			if y := c.At.UTC().Year(); y < minYear || y > maxYear {
				t.Fatalf("Parse(%q) = %+v: year %d outside %d..%d", s, c, y, minYear, maxYear)
			}
		}
	})
}
