package email_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rolegate/rolegate/internal/email"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"ASCII", "alice@example.com", "alice@example.com"},
		{"ASCII case", "Alice@EXAMPLE.com", "alice@example.com"},
		{"bootstrap admin", "admin@localhost", "admin@localhost"},
		{"dots and atext", "a.b+tag!#$%&'*/=?^_`{|}~-@example.com", "a.b+tag!#$%&'*/=?^_`{|}~-@example.com"},
		{"Kelvin sign is k", "\u212Aate@example.com", "kate@example.com"},
		{"Kelvin sign in the domain", "kate@\u212A.example", "kate@k.example"},
		// Unicode lowercases İ to i and a combining dot: not alice.
		{"dotted capital I", "AL\u0130CE@example.com", "ali\u0307ce@example.com"},
		{"dotless small i stays", "al\u0131ce@example.com", "al\u0131ce@example.com"},
		{"NFC café", "caf\u00e9@example.com", "caf\u00e9@example.com"},
		{"NFD café", "cafe\u0301@example.com", "caf\u00e9@example.com"},
		{"fullwidth letters", "\uff41\uff4c\uff49\uff43\uff45@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "alice@example.com"},
		{"fullwidth dot in the domain", "alice@example\uff0ecom", "alice@example.com"},
		{"IDN domain, Unicode", "bob@b\u00fccher.example", "bob@xn--bcher-kva.example"},
		{"IDN domain, NFD", "bob@bu\u0308cher.example", "bob@xn--bcher-kva.example"},
		{"IDN domain, ASCII", "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example"},
		{"IDN domain, ASCII upper case", "bob@XN--BCHER-KVA.Example", "bob@xn--bcher-kva.example"},
		{"sharp s is not ss", "stra\u00dfe@example.com", "stra\u00dfe@example.com"},
		{"Greek", "\u0391\u039b\u0395\u039e@example.gr", "\u03b1\u03bb\u03b5\u03be@example.gr"},
		{"254 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := email.Canonical(tt.addr)
			if err != nil {
				t.Fatalf("Canonical(%+q) error: %v", tt.addr, err)
			}
			if got != tt.want {
				t.Errorf("Canonical(%+q) = %+q, want %+q", tt.addr, got, tt.want)
			}
			again, err := email.Canonical(got)
			if err != nil || again != got {
				t.Errorf("Canonical(%+q) = %+q, %v; a canonical form must be its own", got, again, err)
			}
		})
	}
}

// Addresses that look alike, or were equal under PostgreSQL's lower(), but
// are different accounts.
func TestCanonicalKeepsLookAlikesApart(t *testing.T) {
	pairs := [][2]string{
		{"AL\u0130CE@example.com", "alice@example.com"},
		{"al\u0131ce@example.com", "alice@example.com"},
		{"stra\u00dfe@example.com", "strasse@example.com"},
		{"\u0430lice@example.com", "alice@example.com"}, // Cyrillic a
	}
	for _, p := range pairs {
		a, errA := email.Canonical(p[0])
		b, errB := email.Canonical(p[1])
		if errA != nil || errB != nil {
			t.Fatalf("Canonical(%+q), Canonical(%+q): %v, %v", p[0], p[1], errA, errB)
		}
		if a == b {
			t.Errorf("%+q and %+q have one canonical form %+q", p[0], p[1], a)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	tests := []struct {
		name, addr, why string
	}{
		{"empty", "", "empty"},
		{"no @", "alice.example.com", "no @"},
		{"two @", "alice@bob@example.com", "more than one @"},
		{"quoted local part with @", `"alice@home"@example.com`, "more than one @"},
		{"quoted local part", `"alice"@example.com`, "dot-atom"},
		{"empty local part", "@example.com", "before the @ is empty"},
		{"empty domain", "alice@", "domain is empty"},
		{"zero-width space", "ali\u200bce@example.com", "U+200B"},
		{"zero-width space in the domain", "alice@exam\u200bple.com", "U+200B"},
		{"zero-width joiner", "ali\u200dce@example.com", "U+200D"},
		{"zero-width non-joiner", "ali\u200cce@example.com", "U+200C"},
		{"byte order mark", "\ufeffalice@example.com", "U+FEFF"},
		{"soft hyphen in the domain", "alice@exam\u00adple.com", "U+00AD"},
		{"right-to-left override", "\u202eecila@example.com", "U+202E"},
		{"left-to-right mark", "alice\u200e@example.com", "U+200E"},
		{"bidi isolate", "alice@\u2066example.com", "U+2066"},
		{"combining grapheme joiner", "ali\u034fce@example.com", "U+034F"},
		{"variation selector", "alice\ufe0f@example.com", "U+FE0F"},
		{"Hangul filler", "alice\u3164@example.com", "U+3164"},
		{"NUL", "alice\x00@example.com", "U+0000"},
		{"newline", "alice@example.com\n", "U+000A"},
		{"DEL", "alice\x7f@example.com", "U+007F"},
		{"C1 control", "alice\u0085@example.com", "U+0085"},
		{"space", "alice smith@example.com", "U+0020"},
		{"leading space", " alice@example.com", "U+0020"},
		{"no-break space", "alice\u00a0@example.com", "U+00A0"},
		{"invalid UTF-8", "ali\xffce@example.com", "UTF-8"},
		{"display name", "Alice <alice@example.com>", "U+0020"},
		{"fullwidth @ alone", "alice\uff20example.com", "no @"},
		{"fullwidth @ in the local part", "a\uff20b@example.com", "dot-atom"},
		{"leading dot", ".alice@example.com", "dot-atom"},
		{"trailing dot", "alice.@example.com", "dot-atom"},
		{"two dots", "al..ice@example.com", "dot-atom"},
		{"comment", "alice(x)@example.com", "dot-atom"},
		{"backslash", `ali\ce@example.com`, "dot-atom"},
		{"emoji", "\U0001F600@example.com", "RFC 8265"},
		{"titlecase digraph", "\u01c5@example.com", "RFC 8265"},
		{"private use", "\ue000@example.com", "RFC 8265"},
		{"mixed directions", "\u05d0a@example.com", "RFC 8265"},
		{"domain literal", "alice@[127.0.0.1]", "IDNA"},
		{"underscore in the domain", "alice@exa_mple.com", "IDNA"},
		{"trailing dot in the domain", "alice@example.com.", "IDNA"},
		{"empty label", "alice@example..com", "IDNA"},
		{"leading hyphen", "alice@-example.com", "IDNA"},
		{"bad punycode", "alice@xn--abc-.example", "IDNA"},
		{"label over 63 bytes", "alice@" + strings.Repeat("a", 64) + ".com", "IDNA"},
		// 107 bytes as typed, 287 in ASCII (xn--tda for each ü).
		{"domain over 253 bytes in ASCII", "a@" + strings.Repeat("\u00fc.", 35) + "\u00fc", "IDNA"},
		{"local part over 64 bytes", strings.Repeat("a", 65) + "@example.com", "longer than 64"},
		{"address over 254 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62), "longer than 254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := email.Canonical(tt.addr)
			if err == nil {
				t.Fatalf("Canonical(%+q) = %+q, want an error", tt.addr, got)
			}
			if got != "" || !errors.Is(err, email.ErrInvalid) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Canonical(%+q) = %+q, %v; want \"\" and an ErrInvalid saying %q", tt.addr, got, err, tt.why)
			}
		})
	}
}
