package channels

import "time"

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
	burst := float32(burstFactor * perSecond)
	if r.subscribeAt == 0 {
		r.subscribeTokens = burst
	} else {
		r.subscribeTokens = min(burst, r.subscribeTokens+float32(float64(now-r.subscribeAt)*float64(perSecond)/float64(time.Second)))
	}
	r.subscribeAt = now
	if r.subscribeTokens < 1 {
		return false
	}
	r.subscribeTokens--
	return true
}
