package password

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNew(t *testing.T) {
	tests := []struct {
		name, pw string
		wantRule string // "" when accepted
	}{
		{"twelve ASCII", "abcdefghijkl", ""},
		{"eleven ASCII", "abcdefghijk", "must be 12 to 1024 characters long"},
		// Twelve characters of three bytes each: 36 bytes, 12 characters.
		{"twelve CJK characters", strings.Repeat("密", 12), ""},
		// Four characters of three bytes each: 12 bytes, yet too short.
		{"twelve bytes, four characters", strings.Repeat("密", 4), "must be 12 to 1024 characters long"},
		{"twelve spaces", strings.Repeat(" ", 12), "must not be blank"},
		{"tabs and newlines", "\t\n \t\n \t\n \t\n ", "must not be blank"},
		{"ideographic spaces", strings.Repeat("\u3000", 12), "must not be blank"},
		{"spaces around a word", "     word     ", ""},
		{"max characters", strings.Repeat("a", MaxChars), ""},
		{"max characters of four bytes", strings.Repeat("😀", MaxChars), ""},
		{"one over max", strings.Repeat("a", MaxChars+1), "must be 12 to 1024 characters long"},
		{"NUL", "abcdefghijkl\x00", "must be valid UTF-8 without NUL characters"},
		{"invalid UTF-8", "abcdefghijkl\xff", "must be valid UTF-8 without NUL characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNew(tt.pw)
			if tt.wantRule == "" {
				if err != nil {
					t.Fatalf("CheckNew = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantRule || !errors.Is(err, ErrPolicy) {
				t.Fatalf("CheckNew = %v, want %q wrapping ErrPolicy", err, tt.wantRule)
			}
		})
	}
	// Every password CheckNew accepts can be hashed.
	if len(strings.Repeat("😀", MaxChars)) > MaxPasswordLen {
		t.Error("MaxChars characters can exceed MaxPasswordLen bytes")
	}
}
