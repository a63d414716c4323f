package webhooks

import (
	"sync/atomic"
	"time"
)

// DropReason says why events were given up on; it is the reason label of the dropped counter.
type DropReason string

const (
	// DropEndpointQueueFull: an endpoint already had Config.EndpointQueueSize events waiting, none
	// of them worth less than the new one, which was dropped.
	DropEndpointQueueFull DropReason = "endpoint_queue_full"
	// DropShed: a waiting event was dropped from a full endpoint queue to make room for a more
	// valuable one (see rank: public-channel occupancy goes first, member events last).
	DropShed DropReason = "shed"
	// DropRetryExpired: the endpoint kept failing for the whole retry window (Config.RetryFor), or
	// the event was the removal of an addition dropped that way.
	DropRetryExpired DropReason = "retry_expired"
	// DropShutdown: the shutdown deadline passed before the event was delivered, or it was emitted
	// after Shutdown began.
	DropShutdown DropReason = "shutdown"
)

// DropReasons lists every DropReason.
var DropReasons = []DropReason{DropEndpointQueueFull, DropShed, DropRetryExpired, DropShutdown}

// Stats is a snapshot of the dispatcher's counters and gauges, for logs and metrics. Event counts
// are per endpoint: an event sent to two endpoints counts twice.
type Stats struct {
	// Delivered counts requests an endpoint answered with 2xx; DeliveredEvents the events in them.
	Delivered, DeliveredEvents int64
	// Retried counts attempts after the first, across all requests.
	Retried int64
	// Dropped counts events given up on, by reason (every reason is present).
	Dropped map[DropReason]int64
	// Coalesced counts events that were never sent because a later event made them moot while they
	// waited: a channel_occupied or member_added cancelled by its removal (both count), a
	// subscription_count replaced by a newer one, a cache_miss merged into a waiting one. Nothing a
	// receiver needs is lost.
	Coalesced int64
	// Packed counts requests that carried several events although their app does not batch,
	// because their endpoint was backlogged.
	Packed int64
	// Queued is a gauge: the events waiting in endpoint queues now (not those in a request).
	Queued int64
	// Backlogged is a gauge: the endpoints backlogged now (see Packed).
	Backlogged int64
}

// DroppedTotal is the sum of Dropped.
func (s Stats) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// counters are the live values behind Stats; written under Dispatcher.mu, except drops at Shutdown.
type counters struct {
	delivered, deliveredEvents, retried atomic.Int64
	coalesced, packed                   atomic.Int64
	queued, backlogged                  atomic.Int64
	dropped                             [4]atomic.Int64 // indexed like DropReasons
}

// countDrop counts events of an app given up on, in Stats and for the Observer.
func (d *Dispatcher) countDrop(appID string, r DropReason, events int) {
	d.stats.drop(r, events)
	if d.cfg.Observer != nil {
		d.cfg.Observer.Dropped(appID, r, events)
	}
}

func (c *counters) drop(r DropReason, events int) {
	for i, known := range DropReasons {
		if known == r {
			c.dropped[i].Add(int64(events))
			return
		}
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Delivered:       c.delivered.Load(),
		DeliveredEvents: c.deliveredEvents.Load(),
		Retried:         c.retried.Load(),
		Dropped:         make(map[DropReason]int64, len(DropReasons)),
		Coalesced:       c.coalesced.Load(),
		Packed:          c.packed.Load(),
		Queued:          c.queued.Load(),
		Backlogged:      c.backlogged.Load(),
	}
	for i, r := range DropReasons {
		s.Dropped[r] = c.dropped[i].Load()
	}
	return s
}

// throttle lets a repeated warning through at most once per interval of real time (whatever the
// Clock: it is about log volume) and counts what it held back, so an overflow is logged without a
// line per dropped event. Safe for concurrent use.
type throttle struct {
	last       atomic.Int64 // unix nanoseconds of the last line let through; 0: never
	suppressed atomic.Int64
}

const throttleInterval = 10 * time.Second

// allow reports whether to log now and, if so, how many occurrences were held back since the last
// line.
func (t *throttle) allow(now time.Time) (bool, int64) {
	last := t.last.Load()
	if last != 0 && now.UnixNano()-last < int64(throttleInterval) {
		t.suppressed.Add(1)
		return false, 0
	}
	if !t.last.CompareAndSwap(last, max(now.UnixNano(), 1)) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
