package channels

import (
	"context"
	"time"
)

// CachedEvent is the last event published to a cache channel, kept as the exact frame subscribers
// receive so that a replay costs no encoding.
type CachedEvent struct {
	Data  string // the event's data, for GET /channels/{name}?info=cache
	Frame []byte
}

// Cache keeps the last REST event of each cache channel for a while (PROTOCOL §2.7), cluster-wide.
type Cache interface {
	// Set stores ev as the channel's last event for ttl.
	Set(ctx context.Context, appID, channel string, ev CachedEvent, ttl time.Duration) error
	// Get returns the channel's event and the time it has left; ok is false when nothing is cached.
	Get(ctx context.Context, appID, channel string) (ev CachedEvent, ttl time.Duration, ok bool, err error)
}
