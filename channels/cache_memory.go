package channels

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// MemoryCache is the single-node Cache. It is bounded by entries and by bytes: when either bound is
// reached the entry closest to expiry makes room, so a backend publishing to endless distinct cache
// channels cannot grow it without bound. Expired entries are swept on a timer that runs only while
// the cache holds something, so their memory returns after the TTL even when nothing is published.
type MemoryCache struct {
	maxEntries int
	maxBytes   int
	now        func() time.Time

	mu      sync.Mutex
	entries map[channelKey]*cacheEntry
	expiry  expiryHeap // every entry, soonest expiry first
	bytes   int        // of every entry's frame and key
	seq     uint64     // the last sequence number given out
	sweep   *time.Timer
}

type cacheEntry struct {
	key     channelKey
	frame   []byte
	seq     uint64
	expires time.Time
	index   int // in expiry
}

// cacheEntryOverhead is what an entry costs beyond its frame and key: the struct, its map slot and
// its heap slot.
const cacheEntryOverhead = 160

func (e *cacheEntry) size() int {
	return len(e.frame) + len(e.key.app) + len(e.key.name) + cacheEntryOverhead
}

// cacheSweepInterval is how often expired entries are swept while the cache holds any.
const cacheSweepInterval = time.Second

// NewMemoryCache returns a cache of at most maxEntries channels (0: 100,000) and maxBytes bytes of
// events (0: 64 MiB). now is its clock (nil: time.Now).
func NewMemoryCache(maxEntries, maxBytes int, now func() time.Time) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = 100_000
	}
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{entries: make(map[channelKey]*cacheEntry), maxEntries: maxEntries, maxBytes: maxBytes, now: now}
}

// Set implements Cache. An event larger than the whole bound is not kept.
func (c *MemoryCache) Set(_ context.Context, appID, channel string, frame []byte, ttl time.Duration) (uint64, error) {
	k := channelKey{appID, channel}
	expires := c.now().Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if e := c.entries[k]; e != nil {
		c.remove(e)
	}
	e := &cacheEntry{key: k, frame: frame, seq: c.seq, expires: expires}
	if e.size() > c.maxBytes {
		return c.seq, nil
	}
	for len(c.entries) >= c.maxEntries || c.bytes+e.size() > c.maxBytes {
		c.remove(c.expiry[0])
	}
	c.entries[k] = e
	heap.Push(&c.expiry, e)
	c.bytes += e.size()
	if c.sweep == nil {
		c.sweep = time.AfterFunc(cacheSweepInterval, c.sweepExpired)
	}
	return c.seq, nil
}

// remove drops e; mu is held.
func (c *MemoryCache) remove(e *cacheEntry) {
	delete(c.entries, e.key)
	heap.Remove(&c.expiry, e.index)
	c.bytes -= e.size()
}

// sweepExpired drops every expired entry, and runs again while entries remain.
func (c *MemoryCache) sweepExpired() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.expiry) > 0 && !now.Before(c.expiry[0].expires) {
		c.remove(c.expiry[0])
	}
	if len(c.entries) == 0 {
		c.sweep = nil
		c.expiry = nil // let a large backing array go
		return
	}
	c.sweep.Reset(cacheSweepInterval)
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, appID, channel string) (CachedEvent, bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[channelKey{appID, channel}]
	if e == nil {
		return CachedEvent{}, false, nil
	}
	if left := e.expires.Sub(now); left > 0 {
		return CachedEvent{Frame: e.frame, Seq: e.seq, TTL: left}, true, nil
	}
	c.remove(e)
	return CachedEvent{}, false, nil
}

// Bytes returns what the entries cost, as counted against the byte bound.
func (c *MemoryCache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// expiryHeap orders cache entries by expiry (container/heap).
type expiryHeap []*cacheEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*cacheEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Miss implements Cache. The server asks about a channel at most once per CacheMissInterval (its
// own throttle, see Server.cacheMiss), so on one node every miss it asks about is the first.
func (c *MemoryCache) Miss(context.Context, string, string) (bool, error) { return true, nil }
