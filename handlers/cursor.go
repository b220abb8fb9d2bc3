package handlers

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/rolegate/rolegate/access"
	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/problem"
)

// Page sizes of the list operations; the spec declares the same bounds.
const (
	defaultLimit = 50
	maxLimit     = 200
)

func pageLimit(limit *int) int32 {
	if limit == nil || *limit < 1 || *limit > maxLimit {
		return defaultLimit
	}
	return int32(*limit)
}

// trimPage cuts rows, fetched with one more than limit, to the page, and
// returns the cursor of the next page when there is one.
func trimPage[T any](rows []T, limit int32, pos func(T) timeCursor) ([]T, *string) {
	if len(rows) <= int(limit) {
		return rows, nil
	}
	rows = rows[:limit]
	next := pos(rows[len(rows)-1]).String()
	return rows, &next
}

// listOwner returns whose items the caller lists: its own, or, for an
// admin, those of the owner asked for. Anyone else asking for another's
// items is refused with 403.
func listOwner(ctx context.Context, asked *int64) (int64, error) {
	own := access.Caller(ctx).UserID
	if asked == nil || *asked == own {
		return own, nil
	}
	if !seesAll(ctx) {
		return 0, problem.InsufficientScope("Only an admin may list another user's items.")
	}
	return *asked, nil
}

// timeCursor is an opaque keyset position: a row's creation time and id.
type timeCursor struct {
	at time.Time
	id int64
}

func (c timeCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte("t" + strconv.FormatInt(c.at.UnixMicro(), 10) + "." + strconv.FormatInt(c.id, 10)))
}

var errBadCursor = &problem.Error{
	Kind:   problem.Invalid,
	Detail: "The cursor is not one this API returned.",
	Fields: []api.FieldError{{Field: "query.cursor", Message: "is malformed"}},
}

// The years a time cursor may name.
const (
	minCursorYear = 1970
	maxCursorYear = 9999
)

// parseTimeCursor decodes a cursor; ok is false when s is nil.
func parseTimeCursor(s *string) (c timeCursor, ok bool, err error) {
	if s == nil {
		return c, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*s)
	if err != nil || len(raw) < 4 || raw[0] != 't' {
		return c, false, errBadCursor
	}
	micros, id, found := strings.Cut(string(raw[1:]), ".")
	us, err1 := strconv.ParseInt(micros, 10, 64)
	c.id, err = strconv.ParseInt(id, 10, 64)
	if !found || err1 != nil || err != nil || c.id < 1 {
		return c, false, errBadCursor
	}
	c.at = time.UnixMicro(us)
	// A forged time outside what PostgreSQL stores would wrap around on
	// the way there; no row was ever created outside these years.
	if y := c.at.UTC().Year(); y < minCursorYear || y > maxCursorYear {
		return c, false, errBadCursor
	}
	return c, true, nil
}

// idCursorPrefix marks a cursor holding the last id of the page before.
const idCursorPrefix = "u:"

// encodeIDCursor returns the opaque cursor for the page after id.
func encodeIDCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(idCursorPrefix + strconv.FormatInt(id, 10)))
}

// decodeIDCursor returns the id in a cursor that encodeIDCursor made, and
// false for anything else.
func decodeIDCursor(s string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= len(idCursorPrefix) || string(raw[:len(idCursorPrefix)]) != idCursorPrefix {
		return 0, false
	}
	id, err := strconv.ParseInt(string(raw[len(idCursorPrefix):]), 10, 64)
	if err != nil || id < 1 || encodeIDCursor(id) != s {
		return 0, false
	}
	return id, true
}
