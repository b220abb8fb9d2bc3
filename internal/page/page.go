// Package page is how every list of the API is paged: at most a limit of
// items, and an opaque cursor that holds the keyset position of the last
// item of the page, from which the next page goes on. Lists in creation
// order key on (created_at, id), lists in id order on id alone; both use
// one cursor format.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/problem"
)

// The bounds of a page's size; the spec declares the same.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Limit is the page size asked for, or DefaultLimit outside 1..MaxLimit.
func Limit(asked *int) int32 {
	if asked == nil || *asked < 1 || *asked > MaxLimit {
		return DefaultLimit
	}
	return int32(*asked)
}

// Cursor is a keyset position: the last item's creation time (zero in a
// list in id order) and id.
type Cursor struct {
	At time.Time
	ID int64
}

// The years a cursor's time may name: no row was ever created outside them,
// and a forged time past what PostgreSQL stores would wrap around on the way
// there.
const (
	minYear = 1970
	maxYear = 9999
)

// String encodes c as the opaque cursor clients pass back.
func (c Cursor) String() string {
	var us int64
	if !c.At.IsZero() {
		us = c.At.UnixMicro()
	}
	return base64.RawURLEncoding.EncodeToString([]byte("k" + strconv.FormatInt(us, 10) + "." + strconv.FormatInt(c.ID, 10)))
}

// ErrBadCursor is the 400 for a cursor this package did not make.
var ErrBadCursor = &problem.Error{
	Kind:   problem.Invalid,
	Detail: "The cursor is not one this API returned.",
	Fields: []api.FieldError{{Field: "query.cursor", Message: "is malformed"}},
}

// Parse decodes a cursor: ok is false when s is nil (the first page), and
// the error is ErrBadCursor for anything String did not make.
func Parse(s *string) (c Cursor, ok bool, err error) {
	if s == nil {
		return c, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*s)
	if err != nil || len(raw) < 4 || raw[0] != 'k' {
		return c, false, ErrBadCursor
	}
	micros, id, found := strings.Cut(string(raw[1:]), ".")
	us, err1 := strconv.ParseInt(micros, 10, 64)
	c.ID, err = strconv.ParseInt(id, 10, 64)
	if !found || err1 != nil || err != nil || c.ID < 1 || us < 0 {
		return c, false, ErrBadCursor
	}
	if us > 0 {
		c.At = time.UnixMicro(us)
		if y := c.At.UTC().Year(); y < minYear || y > maxYear {
			return c, false, ErrBadCursor
		}
	}
	// Only the one spelling String makes: no signs, no leading zeros.
	if c.String() != *s {
		return c, false, ErrBadCursor
	}
	return c, true, nil
}

// Of is the page of rows, which were fetched with one more than limit so
// that a next page shows: the first limit rows converted by item, and the
// cursor of the next page (nil on the last), made by pos from the last row.
func Of[Row, Item any](rows []Row, limit int32, pos func(Row) Cursor, item func(Row) Item) (items []Item, next *string) {
	if len(rows) > int(limit) {
		rows = rows[:limit]
		s := pos(rows[len(rows)-1]).String()
		next = &s
	}
	items = make([]Item, len(rows))
	for i, r := range rows {
		items[i] = item(r)
	}
	return items, next
}
