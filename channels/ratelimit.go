package channels

import "time"

// Per-connection rate limits. Both are owned by the connection's reader, so they need no lock.

// rateWindow counts client events in fixed one-second windows: the 11th event inside a second is
// refused when the limit is 10.
type rateWindow struct {
	start int64 // monotonic nanoseconds of the current window
	count int
}

func (w *rateWindow) allow(now int64, perSecond int) bool {
	if now-w.start >= int64(time.Second) {
		w.start, w.count = now, 0
	}
	if w.count >= perSecond {
		return false
	}
	w.count++
	return true
}

// tokenBucket admits a burst of burstFactor × perSecond requests, then perSecond a second: a page
// subscribing to its channels at once, or a client resubscribing after a reconnect, is never refused,
// while a client creating channels in a loop is slowed to a trickle.
type tokenBucket struct {
	at     int64 // monotonic nanoseconds when tokens was last brought up to date; 0: full
	tokens float64
}

const burstFactor = 10

func (b *tokenBucket) allow(now int64, perSecond int) bool {
	burst := float64(burstFactor * perSecond)
	if b.at == 0 {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+float64(now-b.at)*float64(perSecond)/float64(time.Second))
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
