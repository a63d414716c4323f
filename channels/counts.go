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

// countChanged announces a channel's new subscription count to its subscribers (for apps with the
// feature on) and to the hooks. Presence channels have member events instead, encrypted channels would
// break Java's decryption, and internal channels have no audience.
func (s *Server) countChanged(a *app, name string) {
	kind, _ := pusher.KindOf(name)
	if !a.SubscriptionCount || kind == pusher.KindPresence || kind == pusher.KindEncrypted || isInternal(name) {
		return
	}
	k := channelKey{a.ID, name}
	announcing := s.countLock(k)
	announcing.Lock()
	defer announcing.Unlock()
	ch := s.hub.lookup(k)
	if ch == nil { // vacated: nobody to tell but the hooks
		s.emitCount(a.ID, name, 0)
		return
	}
	ch.mu.Lock()
	n := len(ch.subs)
	now := monotonic()
	if wait := time.Duration(ch.countSentAt + int64(countInterval) - now); n > countThrottleAbove && wait > 0 {
		if ch.countTimer == nil {
			ch.countTimer = time.AfterFunc(wait, func() {
				ch.mu.Lock()
				ch.countTimer = nil
				ch.countSentAt = 0
				ch.mu.Unlock()
				s.countChanged(a, name)
			})
		}
		ch.mu.Unlock()
		return
	}
	ch.countSentAt = now
	ch.mu.Unlock()
	s.publish(Message{AppID: a.ID, Channel: name, Frame: pusher.SubscriptionCountFrame(name, n)})
	s.emitCount(a.ID, name, n)
}

// countLock returns the lock a channel's count is read and announced under, so that of two changes
// close together the later count is announced last. Channels share a lock per stripe.
func (s *Server) countLock(k channelKey) *sync.Mutex { return &s.counts[s.hub.stripe(k)] }

func (s *Server) emitCount(appID, name string, n int) {
	s.emit(appID, pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: name, SubscriptionCount: &n})
}
