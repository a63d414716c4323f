package channels

import (
	"context"
	"sync"
	"time"
)

// MemoryCache is the single-node Cache. It holds at most maxEntries channels: expired entries are
// swept as new ones arrive, and when it is still full an arbitrary entry makes room, so a backend
// publishing to endless distinct cache channels cannot grow it without bound.
type MemoryCache struct {
	mu         sync.Mutex
	entries    map[channelKey]cacheEntry
	maxEntries int
	now        func() time.Time
	nextSweep  time.Time
}

type cacheEntry struct {
	ev      CachedEvent
	expires time.Time
}

// NewMemoryCache returns a cache of at most maxEntries channels (0 means 100,000).
func NewMemoryCache(maxEntries int, now func() time.Time) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{entries: make(map[channelKey]cacheEntry), maxEntries: maxEntries, now: now}
}

// Set implements Cache.
func (c *MemoryCache) Set(_ context.Context, appID, channel string, ev CachedEvent, ttl time.Duration) error {
	k := channelKey{appID, channel}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[k]; !exists && len(c.entries) >= c.maxEntries {
		c.makeRoom(now)
	}
	c.entries[k] = cacheEntry{ev: ev, expires: now.Add(ttl)}
	return nil
}

// makeRoom drops expired entries (sweeping at most once a second) and, if none had expired, one
// arbitrary entry: Go's map order is random, so no channel is favoured. Called with mu held.
func (c *MemoryCache) makeRoom(now time.Time) {
	if now.After(c.nextSweep) {
		c.nextSweep = now.Add(time.Second)
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) < c.maxEntries {
			return
		}
	}
	for k := range c.entries {
		delete(c.entries, k)
		return
	}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, appID, channel string) (CachedEvent, time.Duration, bool, error) {
	k := channelKey{appID, channel}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return CachedEvent{}, 0, false, nil
	}
	if left := e.expires.Sub(now); left > 0 {
		return e.ev, left, true, nil
	}
	delete(c.entries, k)
	return CachedEvent{}, 0, false, nil
}
