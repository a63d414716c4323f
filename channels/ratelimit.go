package channels

import "time"

// rateWindow counts client events in fixed one-second windows: the 11th event inside a second is
// refused when the limit is 10. It is owned by the read loop, so it needs no lock.
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
