// Package email gives an email address the one canonical form under which
// rolegate stores, compares and looks up logins: addresses that differ only
// in case, Unicode normalization, character width or the encoding of the
// domain share it, and addresses that merely look alike do not.
//
// PostgreSQL's lower() is no substitute: it depends on the database's
// locale, folds ALİCE into alice, leaves NFC and NFD spellings of café apart
// and lets invisible characters through.
package email

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// Length limits of RFC 5321 section 4.5.3.1, in bytes of UTF-8 as typed.
const (
	MaxLen      = 254 // the whole address (a 256-byte path less its angle brackets)
	MaxLocalLen = 64  // the part before the @
)

// ErrInvalid is wrapped by every error Canonical returns. Its message, and
// the reason appended to it, may be shown to the person who typed the
// address; neither repeats the address.
var ErrInvalid = errors.New("not a usable email address")

// domains maps and checks a domain name as a DNS lookup would (UTS 46
// nontransitional processing of IDNA 2008), with host-name rules: no ASCII
// but letters, digits and hyphens (STD 3), no hyphen at either end of a
// label, labels of 1 to 63 bytes and at most 253 in all in ASCII form.
var domains = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
)

// Canonical returns the canonical form of addr, the key under which an
// account's email is unique and found at login. Two addresses name the same
// account exactly when their canonical forms are equal. The canonical form
// of a canonical form is itself.
//
// An address has a canonical form when:
//
//   - it is valid UTF-8, at most MaxLen bytes, and holds no control
//     character, no format character (zero-width characters, bidi controls
//     such as U+202E, the soft hyphen), no other invisible one (the combining
//     grapheme joiner, variation selectors, Hangul fillers) and no space;
//   - it holds exactly one @, between a local part and a domain, neither
//     empty (quoted local parts, which may hold an @, are refused);
//   - the local part, at most MaxLocalLen bytes, is accepted by the
//     UsernameCaseMapped profile of RFC 8265 (PRECIS): it is width-folded
//     (fullwidth a is a), lowercased (the Kelvin sign K is k; İ is i with a
//     combining dot, not i), normalized to NFC (both spellings of café are
//     one), and must then be in the IdentifierClass and obey the Bidi Rule;
//     the result must be a dot-atom: ASCII letters, digits,
//     !#$%&'*+-/=?^_`{|}~ and dots, or non-ASCII characters, with no dot
//     first, last or next to another;
//   - the domain passes IDNA (UTS 46 lookup mapping, then IDNA 2008 and
//     host-name rules, see domains), without a trailing dot. Its canonical
//     form is its ASCII form: bücher.example and xn--bcher-kva.example are
//     one domain. A name without dots, such as localhost, is accepted.
//
// The canonical form is the canonical local part, an @ and the canonical
// domain. Otherwise Canonical returns "" and an error that wraps ErrInvalid
// and says why; it fails in no other way.
func Canonical(addr string) (string, error) {
	if addr == "" {
		return "", invalid("it is empty")
	}
	if !utf8.ValidString(addr) {
		return "", invalid("it is not valid UTF-8")
	}
	if len(addr) > MaxLen {
		return "", invalid(fmt.Sprintf("it is longer than %d bytes", MaxLen))
	}
	for _, r := range addr {
		if hidden(r) {
			return "", invalid(fmt.Sprintf("it contains %U, a control, format, invisible or space character", r))
		}
	}
	local, domain, ok := strings.Cut(addr, "@")
	switch {
	case !ok:
		return "", invalid("it has no @")
	case strings.Contains(domain, "@"):
		return "", invalid("it has more than one @")
	case local == "":
		return "", invalid("the part before the @ is empty")
	case domain == "":
		return "", invalid("the domain is empty")
	case len(local) > MaxLocalLen:
		return "", invalid(fmt.Sprintf("the part before the @ is longer than %d bytes", MaxLocalLen))
	}
	l, err := precis.UsernameCaseMapped.String(local)
	if err != nil {
		return "", invalid("the part before the @ is not a valid username (RFC 8265): it holds a character that is not allowed or mixes writing directions")
	}
	if !dotAtom(l) {
		return "", invalid("the part before the @ is not a dot-atom: only letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots between them are allowed")
	}
	d, err := domains.ToASCII(domain)
	if err != nil || strings.HasSuffix(d, ".") {
		return "", invalid("the domain is not a valid host name (IDNA)")
	}
	return l + "@" + d, nil
}

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// hidden reports whether r is a character that cannot be seen or that
// changes how its neighbours are displayed: IDNA would silently drop some of
// them from a domain, so they are refused everywhere.
func hidden(r rune) bool {
	return unicode.IsControl(r) || unicode.IsSpace(r) ||
		unicode.In(r, unicode.Cf, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// dotAtom reports whether s is a dot-atom of RFC 5322 section 3.2.3 with
// non-ASCII characters allowed as atext (RFC 6532 section 3.2).
func dotAtom(s string) bool {
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if r < utf8.RuneSelf && !atext(byte(r)) {
				return false
			}
		}
	}
	return true
}

func atext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
