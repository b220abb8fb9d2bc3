package httplog

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name, peer, xff, want string
	}{
		{"no proxy", "203.0.113.7:4000", "", "203.0.113.7"},
		{"untrusted peer's header is ignored", "203.0.113.7:4000", "198.51.100.1", "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:4000", "198.51.100.1", "198.51.100.1"},
		{"two trusted proxies", "10.1.2.3:4000", "198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"a forged hop before a real one", "127.0.0.1:4000", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"garbage hop", "10.1.2.3:4000", "198.51.100.1, nonsense", "10.1.2.3"},
		{"trusted peer, no header", "10.1.2.3:4000", "", "10.1.2.3"},
		{"IPv4-mapped IPv6", "10.1.2.3:4000", "::ffff:198.51.100.1", "198.51.100.1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := clientAddr(r, trusted); got != tt.want {
			t.Errorf("%s: clientAddr = %q, want %q", tt.name, got, tt.want)
		}
	}
}
