package token

import "testing"

// CacheStats counts what the cache answered and what it sent on to full
// verification: a first sight, an expired entry and a failure are misses.
func TestCacheStats(t *testing.T) {
	m, clk := newTestManager(t, nil)
	raw, exp := issue(t, m, 42, "ada@example.com", nil)
	check := func(step string, wantHits, wantMisses uint64) {
		t.Helper()
		if hits, misses := m.CacheStats(); hits != wantHits || misses != wantMisses {
			t.Fatalf("%s: CacheStats = %d hits, %d misses; want %d, %d", step, hits, misses, wantHits, wantMisses)
		}
	}
	check("new", 0, 0)
	_, _ = m.Verify(raw)
	check("first sight", 0, 1)
	_, _ = m.Verify(raw)
	_, _ = m.Verify(raw)
	check("seen", 2, 1)
	_, _ = m.Verify("not.a.token")
	check("garbage", 2, 2)
	clk.Set(exp)
	_, _ = m.Verify(raw)
	check("at exp", 2, 3)

	off, _ := newTestManager(t, func(c *Config) { c.CacheSize = -1 })
	raw, _ = issue(t, off, 42, "ada@example.com", nil)
	_, _ = off.Verify(raw)
	if hits, misses := off.CacheStats(); hits != 0 || misses != 0 {
		t.Errorf("cache off: CacheStats = %d, %d; want 0, 0", hits, misses)
	}
}
