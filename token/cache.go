package token

import (
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// cache is a bounded, sharded map from raw token to its verified claims.
//
// An entry is served only while validFrom <= now < exp, the window in which
// a full verification of the same token would also succeed, so a hit never
// accepts anything verification would reject.
//
// Lookups take no lock and write no memory that another core reads: each
// shard's map is immutable once published, and a change publishes a copy
// (read-copy-update), so that one token presented from every core at once
// (a busy machine client's) costs no cache line passed between them. A copy
// is of one shard, at most maxShardEntries entries, made only when a token
// is first verified or its entry expires; hits are counted on stripes.
// Lookups do not allocate.
type cache struct {
	seed   maphash.Seed
	shards []cacheShard
	hits   *counter
	misses *counter
}

// maxShardEntries bounds a shard, and so the copy a change makes: a large
// cache has more shards.
const maxShardEntries = 64

// cacheEntry is a verified token's claims, under the hash of the raw
// token: two tokens of one hash take turns in one entry.
type cacheEntry struct {
	raw       string
	claims    *Claims
	validFrom time.Time
	exp       time.Time
}

type cacheShard struct {
	m atomic.Pointer[map[uint64]cacheEntry] // by the hash of the raw token; read without a lock; replaced, never modified

	mu  sync.Mutex // serialises changes
	max int        // capacity of this shard; the shards' capacities sum to the cache size
	// minExp is a lower bound of the exp of every entry: while now < minExp
	// no entry has expired and a sweep would find nothing.
	minExp time.Time
	_      [64]byte // keep shards on separate cache lines
}

// newCache returns a cache holding at most size entries (size > 0), spread
// over at least shards shards (more when a shard would hold over
// maxShardEntries), and never more shards than entries.
func newCache(size, shards int) *cache {
	shards = max(1, min(max(shards, (size+maxShardEntries-1)/maxShardEntries), size))
	c := &cache{seed: maphash.MakeSeed(), shards: make([]cacheShard, shards), hits: new(counter), misses: new(counter)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = size / shards
		if i < size%shards {
			s.max++
		}
		s.m.Store(&map[uint64]cacheEntry{})
	}
	return c
}

// shard returns key's shard and its hash there: one hash picks both.
func (c *cache) shard(key string) (*cacheShard, uint64) {
	h := maphash.String(c.seed, key)
	return &c.shards[h%uint64(len(c.shards))], h
}

// get returns the cached claims for key if they are valid at now, else nil.
// An entry found expired is dropped.
func (c *cache) get(key string, now time.Time) *Claims {
	s, h := c.shard(key)
	e, ok := (*s.m.Load())[h]
	// Not a comparison of secrets to be made in constant time: raw is a
	// token verified before, and a time to learn from only follows a hash
	// match under a seed no caller knows.
	if !ok || e.raw != key {
		c.misses.add()
		return nil
	}
	if now.Before(e.exp) {
		if now.Before(e.validFrom) { // clock went backwards: let verification decide
			c.misses.add()
			return nil
		}
		c.hits.add()
		return e.claims
	}
	c.misses.add()
	s.mu.Lock()
	if old := *s.m.Load(); old[h].raw == key && !now.Before(old[h].exp) {
		m := maps.Clone(old)
		delete(m, h)
		s.m.Store(&m)
	}
	s.mu.Unlock()
	return nil
}

// put stores claims for key if they are valid at now (validFrom <= now <
// exp); otherwise it does nothing. When the shard is full it first drops
// expired entries and, if none were, one arbitrary entry.
func (c *cache) put(key string, claims *Claims, validFrom, exp, now time.Time) {
	if now.Before(validFrom) || !now.Before(exp) {
		return
	}
	s, h := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := maps.Clone(*s.m.Load())
	if _, ok := m[h]; !ok && len(m) >= s.max {
		s.evict(m, now)
	}
	m[h] = cacheEntry{raw: key, claims: claims, validFrom: validFrom, exp: exp}
	if len(m) == 1 || exp.Before(s.minExp) {
		s.minExp = exp
	}
	s.m.Store(&m)
}

// evict makes room for one entry in m, the shard's next map. s.mu must be
// held.
func (s *cacheShard) evict(m map[uint64]cacheEntry, now time.Time) {
	if !now.Before(s.minExp) {
		// Some entry may have expired: sweep them all and recompute minExp.
		var minExp time.Time
		for k, e := range m {
			if !now.Before(e.exp) {
				delete(m, k)
				continue
			}
			if minExp.IsZero() || e.exp.Before(minExp) {
				minExp = e.exp
			}
		}
		s.minExp = minExp
		if len(m) < s.max {
			return
		}
	}
	// Nothing expired: drop an arbitrary entry (map iteration order is
	// randomised, so this is a random eviction).
	for k := range m {
		delete(m, k)
		return
	}
}

// stats returns how many lookups found valid claims and how many did not.
func (c *cache) stats() (hits, misses uint64) {
	return c.hits.load(), c.misses.load()
}

// len returns the number of entries, expired or not.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		n += len(*c.shards[i].m.Load())
	}
	return n
}

// counter is a count that every core adds to at once without passing a
// cache line between them: each adds to a stripe of its own, and load sums
// the stripes. A stripe takes two cache lines (processors fetch lines in
// pairs), and a counter is allocated on its own: at 2 KiB, the allocator
// aligns it to its size.
type counter struct {
	stripes [16]struct {
		n atomic.Uint64
		_ [120]byte
	}
}

// stripeHints hand out stripe numbers that stay with a processor: a
// sync.Pool keeps an object per P (the runtime's processor), so the hint a
// goroutine gets is, as a rule, the one the last goroutine on its P put
// back. A random stripe would move every line from core to core.
var stripeHints = sync.Pool{New: func() any { h := rand.Uint32(); return &h }}

func (c *counter) add() {
	h := stripeHints.Get().(*uint32)
	c.stripes[*h%uint32(len(c.stripes))].n.Add(1)
	stripeHints.Put(h)
}

func (c *counter) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].n.Load()
	}
	return n
}
