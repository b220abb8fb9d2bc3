package token

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cache is a bounded, sharded map from raw token to its verified claims.
//
// An entry is served only while validFrom <= now < exp, the window in which
// a full verification of the same token would also succeed, so a hit never
// accepts anything verification would reject. Lookups take a shard read lock
// and do not allocate.
type cache struct {
	seed   maphash.Seed
	shards []cacheShard
}

type cacheEntry struct {
	claims    *Claims
	validFrom time.Time
	exp       time.Time
}

type cacheShard struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry
	max int // capacity of this shard; the shards' capacities sum to the cache size
	// minExp is a lower bound of the exp of every entry: while now < minExp
	// no entry has expired and a sweep would find nothing.
	minExp time.Time
	// hits and misses count lookups, per shard so that counting adds no
	// cache line shared by all shards.
	hits, misses atomic.Uint64
	_            [64]byte // keep shards on separate cache lines
}

// newCache returns a cache holding at most size entries (size > 0), spread
// over up to shards shards.
func newCache(size, shards int) *cache {
	shards = max(1, min(shards, size))
	c := &cache{seed: maphash.MakeSeed(), shards: make([]cacheShard, shards)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = size / shards
		if i < size%shards {
			s.max++
		}
		s.m = make(map[string]cacheEntry)
	}
	return c
}

func (c *cache) shard(key string) *cacheShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// get returns the cached claims for key if they are valid at now, else nil.
// An entry found expired is dropped.
func (c *cache) get(key string, now time.Time) *Claims {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		s.misses.Add(1)
		return nil
	}
	if now.Before(e.exp) {
		if now.Before(e.validFrom) { // clock went backwards: let verification decide
			s.misses.Add(1)
			return nil
		}
		s.hits.Add(1)
		return e.claims
	}
	s.misses.Add(1)
	s.mu.Lock()
	if e, ok := s.m[key]; ok && !now.Before(e.exp) {
		delete(s.m, key)
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
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= s.max {
		s.evict(now)
	}
	s.m[key] = cacheEntry{claims: claims, validFrom: validFrom, exp: exp}
	if len(s.m) == 1 || exp.Before(s.minExp) {
		s.minExp = exp
	}
}

// evict makes room for one entry. s.mu must be held for writing.
func (s *cacheShard) evict(now time.Time) {
	if !now.Before(s.minExp) {
		// Some entry may have expired: sweep them all and recompute minExp.
		var minExp time.Time
		for k, e := range s.m {
			if !now.Before(e.exp) {
				delete(s.m, k)
				continue
			}
			if minExp.IsZero() || e.exp.Before(minExp) {
				minExp = e.exp
			}
		}
		s.minExp = minExp
		if len(s.m) < s.max {
			return
		}
	}
	// Nothing expired: drop an arbitrary entry (map iteration order is
	// randomised, so this is a random eviction).
	for k := range s.m {
		delete(s.m, k)
		return
	}
}

// stats returns how many lookups found valid claims and how many did not.
func (c *cache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// len returns the number of entries, expired or not.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
