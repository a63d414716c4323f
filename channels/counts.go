package channels

import (
	"sync"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// Subscription counts are throttled on large channels: above countThrottleAbove subscribers at most
// one announcement per countInterval, the last change always announced at the end of the interval.
const (
	countThrottleAbove = 100
	countInterval      = 5 * time.Second
)

// countChanged announces a channel's new subscription count n, of the given version, to its
// subscribers (for apps with the feature on) and to the hooks. Presence channels have member events
// instead, encrypted channels would break Java's decryption, and internal channels have no audience.
func (s *Server) countChanged(a *app, name string, n int, version uint64) {
	kind, _ := pusher.KindOf(name)
	if !a.SubscriptionCount || kind == pusher.KindPresence || kind == pusher.KindEncrypted || isInternal(name) {
		return
	}
	if n > countThrottleAbove && !s.counts.allow(channelKey{a.ID, name}, func() { s.countNow(a, name) }) {
		return
	}
	if n > 0 { // vacated: nobody to tell but the hooks
		s.publish(Message{AppID: a.ID, Channel: name, Frame: pusher.SubscriptionCountFrame(name, n), Count: version})
	}
	s.emitCount(a.ID, name, n)
}

// countNow announces the channel's current count: the last change of a throttled window.
func (s *Server) countNow(a *app, name string) {
	info, err := s.store.Info(s.ctx, a.ID, name)
	if err != nil {
		s.log.Error().Err(err).Str("app_id", a.ID).Str("channel", name).Msg("subscription count unavailable")
		return
	}
	s.countChanged(a, name, info.Subscriptions, info.Version)
}

func (s *Server) emitCount(appID, name string, n int) {
	s.emit(appID, pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: name, SubscriptionCount: &n})
}

// countThrottle spaces out the count announcements of large channels. It holds an entry only for a
// channel announced within the last countInterval.
type countThrottle struct {
	mu      sync.Mutex
	windows map[channelKey]*countWindow
}

type countWindow struct {
	changed bool // a change came within the window: announce again at its end
}

// allow reports whether a change of k may be announced now. If not, trailing runs at the end of the
// current window, so the last change is announced too.
func (t *countThrottle) allow(k channelKey, trailing func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w := t.windows[k]; w != nil {
		w.changed = true
		return false
	}
	if t.windows == nil {
		t.windows = make(map[channelKey]*countWindow)
	}
	w := &countWindow{}
	t.windows[k] = w
	time.AfterFunc(countInterval, func() {
		t.mu.Lock()
		changed := w.changed
		delete(t.windows, k)
		t.mu.Unlock()
		if changed {
			trailing()
		}
	})
	return true
}

// cacheMissInterval is the least time between two cache_miss webhooks of one channel: subscribers
// arriving together produce one.
const cacheMissInterval = 5 * time.Second

// missThrottle de-duplicates cache_miss webhooks. It keeps when each channel last reported a miss,
// and forgets entries older than the interval whenever it has grown, so it stays bounded by the
// misses of the last few seconds.
type missThrottle struct {
	mu      sync.Mutex
	sent    map[channelKey]int64 // monotonic nanoseconds
	sweptAt int64
}

// due reports whether a miss of k is to be reported now.
func (t *missThrottle) due(k channelKey) bool {
	now := monotonic()
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.sent[k]; ok && now-at < int64(cacheMissInterval) {
		return false
	}
	if t.sent == nil {
		t.sent = make(map[channelKey]int64)
	}
	t.sent[k] = now
	if len(t.sent) > 1024 && now-t.sweptAt > int64(cacheMissInterval) {
		t.sweptAt = now
		for key, at := range t.sent {
			if now-at >= int64(cacheMissInterval) {
				delete(t.sent, key)
			}
		}
	}
	return true
}
