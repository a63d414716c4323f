package channels

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimits are a connection's request rates, owned by its reader.
type rateLimits struct {
	// Client events are counted in fixed one-second windows: the 11th event inside a second is
	// refused when the limit is 10.
	eventsStart int64 // monotonic nanoseconds of the current window
	eventsCount int32
	// Subscribes draw on a token bucket that admits a burst of burstFactor × the rate, then the rate
	// a second: a page subscribing to its channels at once, or a client resubscribing after a
	// reconnect, is never refused, while a client creating channels in a loop is slowed to a trickle.
	subscribeTokens float32
	subscribeAt     int64 // monotonic nanoseconds when the tokens were last brought up to date; 0: full
}

const burstFactor = 10

// allowEvent reports whether a client event may go now at perSecond.
func (r *rateLimits) allowEvent(now int64, perSecond int) bool {
	if now-r.eventsStart >= int64(time.Second) {
		r.eventsStart, r.eventsCount = now, 0
	}
	if int(r.eventsCount) >= perSecond {
		return false
	}
	r.eventsCount++
	return true
}

// allowSubscribe reports whether a subscribe may go now at perSecond.
func (r *rateLimits) allowSubscribe(now int64, perSecond int) bool {
	r.subscribeTokens = float32(refill(float64(r.subscribeTokens), r.subscribeAt, now, perSecond))
	r.subscribeAt = now
	if r.subscribeTokens < 1 {
		return false
	}
	r.subscribeTokens--
	return true
}

// refill is what a token bucket of burstFactor × rate tokens, refilled at rate a second, holds at now
// when it held tokens at `at` (0: never used, so full).
func refill(tokens float64, at, now int64, rate int) float64 {
	burst := float64(burstFactor * rate)
	if at == 0 {
		return burst
	}
	return min(burst, tokens+float64(now-at)*float64(rate)/float64(time.Second))
}

// bucket is a token bucket of burstFactor × rate tokens, refilled at rate a second. Guarded by the
// lock of whoever holds it.
type bucket struct {
	tokens float64
	at     int64 // monotonic nanoseconds of the last refill; 0: full
}

// take takes n tokens if there are, and otherwise reports how long until there will be.
func (b *bucket) take(now int64, rate, n int) (ok bool, wait time.Duration) {
	b.tokens, b.at = refill(b.tokens, b.at, now, rate), now
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return true, 0
	}
	return false, time.Duration((float64(n) - b.tokens) / float64(rate) * float64(time.Second))
}

// full reports whether the bucket has refilled to its burst by now: its address is idle.
func (b *bucket) full(now int64, rate int) bool {
	return refill(b.tokens, b.at, now, rate) >= float64(burstFactor*rate)
}

// publishLimit is an app's REST publish bucket on this node.
type publishLimit struct {
	mu sync.Mutex
	b  bucket
}

func (l *publishLimit) allow(rate, events int) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.take(monotonic(), rate, events)
}

// addressLimit is an app's new-connection buckets, one per client address. It tracks at most
// maxTrackedAddresses: when full it forgets the idle ones, and if none is idle a new address goes
// uncounted (reported, so the caller can log it) rather than the map growing without bound.
type addressLimit struct {
	mu    sync.Mutex
	byIP  map[netip.Addr]*bucket
	swept int64 // monotonic nanoseconds of the last sweep
}

const maxTrackedAddresses = 100_000

func (l *addressLimit) allow(ip netip.Addr, rate int) (ok, untracked bool) {
	now := monotonic()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byIP[ip]
	if b == nil {
		if l.byIP == nil {
			l.byIP = make(map[netip.Addr]*bucket)
		}
		if len(l.byIP) >= maxTrackedAddresses && now-l.swept > int64(time.Second) {
			l.swept = now
			for a, old := range l.byIP {
				if old.full(now, rate) {
					delete(l.byIP, a)
				}
			}
		}
		if len(l.byIP) >= maxTrackedAddresses {
			return true, true
		}
		b = &bucket{}
		l.byIP[ip] = b
	}
	ok, _ = b.take(now, rate, 1)
	return ok, false
}
