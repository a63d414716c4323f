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

// counted reports whether the app announces the channel's subscription counts: only with the
// feature on, and not on presence channels (they have member events instead), encrypted channels
// (the event would break Java's decryption) or internal channels (no audience).
func counted(a *app, name string) bool {
	kind, _ := pusher.KindOf(name)
	return a.SubscriptionCount && kind != pusher.KindPresence && kind != pusher.KindEncrypted && !isInternal(name)
}

// countChanged announces a channel's new subscription count n, of the given version, to its
// subscribers and to the hooks, if the channel is counted. A store that records webhooks (a
// cluster) records the subscription_count webhook itself, once per cluster.
func (s *Server) countChanged(a *app, name string, n int, version uint64) {
	if !counted(a, name) {
		return
	}
	if n > countThrottleAbove && !s.counts.allow(channelKey{a.ID, name}, func() { s.countNow(a, name) }) {
		return
	}
	if n > 0 { // vacated: nobody to tell but the hooks
		s.publish(Message{AppID: a.ID, Channel: name, Frame: pusher.SubscriptionCountFrame(name, n), Count: version})
	}
	if !s.storeHooks {
		s.emit(a.ID, pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: name, SubscriptionCount: &n})
	}
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
