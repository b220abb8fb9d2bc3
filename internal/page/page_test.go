package page

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{ID: 1},
		{ID: 9223372036854775807},
		{At: time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC), ID: 42},
		{At: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), ID: 7},
	} {
		s := c.String()
		got, ok, err := Parse(&s)
		if err != nil || !ok || got.ID != c.ID || !got.At.Equal(c.At) {
			t.Errorf("Parse(%v.String()) = %v, %v, %v", c, got, ok, err)
		}
	}
	if _, ok, err := Parse(nil); ok || err != nil {
		t.Errorf("Parse(nil) = %v, %v; want the first page", ok, err)
	}
}

func TestParseRefuses(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"", "not base64!", b64("x0.1"), b64("k0."), b64("k0.x"), b64("k0.0"), b64("k0.-1"), b64("k0.+1"), b64("k00.1"),
		b64("k-1.1"), b64("k1.01"), b64("k9223372036854775807.1"), b64("k253402300800000000.1"), // year 10000
		base64.URLEncoding.EncodeToString([]byte("k0.12")), // padded
	} {
		if _, _, err := Parse(&s); err != ErrBadCursor {
			t.Errorf("Parse(%q) = %v, want ErrBadCursor", s, err)
		}
	}
}

func TestOf(t *testing.T) {
	pos := func(n int) Cursor { return Cursor{ID: int64(n)} }
	double := func(n int) int { return 2 * n }
	items, next := Of([]int{1, 2, 3}, 2, pos, double)
	if len(items) != 2 || items[1] != 4 || next == nil || *next != (Cursor{ID: 2}).String() {
		t.Errorf("Of(3 rows, limit 2) = %v, %v", items, next)
	}
	items, next = Of([]int{1, 2}, 2, pos, double)
	if len(items) != 2 || next != nil {
		t.Errorf("Of(2 rows, limit 2) = %v, %v; want no next page", items, next)
	}
	if items, _ := Of([]int(nil), 2, pos, double); items == nil {
		t.Error("Of(no rows) = nil; want an empty list, which encodes as []")
	}
}
