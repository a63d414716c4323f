package webhooks

import (
	"sync/atomic"
	"time"
)

// DropReason says why events were given up on; it is the reason label of the dropped counter.
type DropReason string

const (
	// DropQueueFull: Emit found the dispatcher's input queue full (Config.QueueSize).
	DropQueueFull DropReason = "queue_full"
	// DropEndpointQueueFull: an endpoint already had Config.EndpointQueueSize requests waiting.
	DropEndpointQueueFull DropReason = "endpoint_queue_full"
	// DropRetryExpired: the endpoint kept failing for the whole retry window (Config.RetryFor).
	DropRetryExpired DropReason = "retry_expired"
	// DropShutdown: the shutdown deadline passed before the request was delivered, or the event was
	// emitted after Shutdown began.
	DropShutdown DropReason = "shutdown"
)

// DropReasons lists every DropReason.
var DropReasons = []DropReason{DropQueueFull, DropEndpointQueueFull, DropRetryExpired, DropShutdown}

// Stats is a snapshot of the dispatcher's counters, for logs and metrics.
type Stats struct {
	// Delivered counts requests an endpoint answered with 2xx; DeliveredEvents the events in them
	// (an event sent to two endpoints counts twice).
	Delivered, DeliveredEvents int64
	// Retried counts attempts after the first, across all requests.
	Retried int64
	// Dropped counts events given up on, by reason (every reason is present). A request dropped for
	// an endpoint counts its events.
	Dropped map[DropReason]int64
}

// DroppedTotal is the sum of Dropped.
func (s Stats) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// counters are the live values behind Stats; written by the loop, the workers and Emit.
type counters struct {
	delivered, deliveredEvents, retried atomic.Int64
	dropped                             [4]atomic.Int64 // indexed like DropReasons
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
