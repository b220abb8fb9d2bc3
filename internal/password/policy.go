package password

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The length a new password may have, counted in characters (Unicode code
// points), not bytes: twelve characters are twelve whatever the script. At
// most MaxChars characters of at most four bytes each fit in MaxPasswordLen
// bytes, so hashing a new password stays bounded.
const (
	MinChars = 12
	MaxChars = MaxPasswordLen / utf8.UTFMax
)

// ErrPolicy is wrapped by every error of CheckNew.
var ErrPolicy = errors.New("password: refused by the password policy")

// policyError is a refusal whose text may be shown to the person choosing
// the password.
type policyError struct{ rule string }

func (e policyError) Error() string { return e.rule }
func (e policyError) Unwrap() error { return ErrPolicy }

// CheckNew returns nil if pw may become a password, and otherwise an error
// wrapping ErrPolicy whose text, meant for the person choosing it, names the
// rule: it must be valid UTF-8 without NUL characters, MinChars to MaxChars
// characters long, and not white space alone (U+3000 and the other Unicode
// spaces count as white space). Existing passwords are never checked
// against it: it applies to new ones only.
func CheckNew(pw string) error {
	if !utf8.ValidString(pw) || strings.IndexByte(pw, 0) >= 0 {
		return policyError{"must be valid UTF-8 without NUL characters"}
	}
	if n := utf8.RuneCountInString(pw); n < MinChars || n > MaxChars {
		return policyError{fmt.Sprintf("must be %d to %d characters long", MinChars, MaxChars)}
	}
	if strings.TrimFunc(pw, unicode.IsSpace) == "" {
		return policyError{"must not be blank"}
	}
	return nil
}
