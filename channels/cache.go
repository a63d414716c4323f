package channels

import (
	"context"
	"sync"
	"time"
)

// Cache keeps the last REST event of each cache channel for a while, cluster-wide: a subscriber is
// replayed it right after subscription_succeeded, or told pusher:cache_miss.
//
// A miss is reported to the webhooks once per channel and CacheMissInterval, cluster-wide:
// subscribers arriving together on any nodes produce one cache_miss.
//
// Each event stored gets a sequence number that grows with every Set of the channel; it travels with
// the live event as Message.Cached, so that a subscriber replayed an event never gets an older one
// live after it.
type Cache interface {
	// Set stores frame, the exact bytes subscribers receive, as the channel's last event for ttl and
	// returns its sequence number.
	Set(ctx context.Context, appID, channel string, frame []byte, ttl time.Duration) (seq uint64, err error)
	// Get returns the channel's last event; ok is false when nothing is cached.
	Get(ctx context.Context, appID, channel string) (ev CachedEvent, ok bool, err error)
	// Miss reports whether a miss of the channel is the first within CacheMissInterval, cluster-wide:
	// only the first is reported as a cache_miss webhook. Each node asks at most once per channel
	// and interval: the server throttles its own misses first, so a burst of subscribers costs the
	// store one call.
	Miss(ctx context.Context, appID, channel string) (first bool, err error)
}

// CacheMissInterval is the least time between two cache_miss webhooks of one channel: subscribers
// arriving together produce one.
const CacheMissInterval = 5 * time.Second

// CachedEvent is the last event of a cache channel.
type CachedEvent struct {
	Frame []byte
	Seq   uint64
	TTL   time.Duration // the time it has left
}

// missThrottle de-duplicates cache_miss webhooks. It keeps when each channel last reported a miss,
// and forgets entries older than the interval whenever it has grown, so it stays bounded by the
// misses of the last few seconds.
type missThrottle struct {
	mu      sync.Mutex
	sent    map[channelKey]time.Time
	sweptAt time.Time
}

// first reports whether a miss of k at now is the first within CacheMissInterval, and records it.
func (t *missThrottle) first(k channelKey, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.sent[k]; ok && now.Sub(at) < CacheMissInterval {
		return false
	}
	if t.sent == nil {
		t.sent = make(map[channelKey]time.Time)
	}
	t.sent[k] = now
	if len(t.sent) > 1024 && now.Sub(t.sweptAt) > CacheMissInterval {
		t.sweptAt = now
		for key, at := range t.sent {
			if now.Sub(at) >= CacheMissInterval {
				delete(t.sent, key)
			}
		}
	}
	return true
}
