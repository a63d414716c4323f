package channels

import (
	"context"
	"testing"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// gatedPresence and gatedCache stand for stores on the far side of a network: each call waits until
// the test lets it through.
type gatedChannels struct {
	*MemoryChannels
	entered, release chan struct{}
}

func (p *gatedChannels) Subscribe(ctx context.Context, s Subscription) (Joined, error) {
	if s.Member != nil {
		p.entered <- struct{}{}
		<-p.release
	}
	return p.MemoryChannels.Subscribe(ctx, s)
}

type gatedCache struct {
	*MemoryCache
	entered, release chan struct{}
}

func (c *gatedCache) Get(ctx context.Context, appID, channel string) (CachedEvent, bool, error) {
	c.entered <- struct{}{}
	<-c.release
	return c.MemoryCache.Get(ctx, appID, channel)
}

// TestSlowStoresDoNotStallFanout: while a subscription waits on a store, publishes to the same channel
// still reach its other subscribers at once; the waiting subscriber gets its snapshot, then them.
func TestSlowStoresDoNotStallFanout(t *testing.T) {
	b := NewMemoryBroker()
	presence := &gatedChannels{MemoryChannels: NewMemoryChannels(b), entered: make(chan struct{}), release: make(chan struct{})}
	cache := &gatedCache{MemoryCache: NewMemoryCache(0, 0, nil), entered: make(chan struct{}), release: make(chan struct{})}
	s := newTestServer(t, Config{Broker: b, Channels: presence, Cache: cache})

	for _, tc := range []struct {
		channel, data    string
		entered, release chan struct{}
		snapshot         []string // what a subscriber is sent after subscription_succeeded
	}{
		{"presence-slow", member("2"), presence.entered, presence.release, nil},
		{"cache-slow", "", cache.entered, cache.release, []string{pusher.EventCacheMiss}},
	} {
		early, earlyFT := newTestConn(t, s)
		go func() { <-tc.entered; tc.release <- struct{}{} }() // let the early subscriber through
		subscribe(t, early, earlyFT, tc.channel, memberOr(tc.channel, "1"))
		expectEvents(t, earlyFT, tc.snapshot...)

		waiting, waitingFT := newTestConn(t, s)
		done := make(chan struct{})
		go func() {
			defer close(done)
			waiting.handleFrame(subscribeFrame(t, waiting, tc.channel, tc.data))
		}()
		<-tc.entered // the second subscription is now inside the store

		s.publish(Message{AppID: testAppID, Channel: tc.channel, Frame: pusher.EventFrame("news", tc.channel, "{}", "")})
		expectEvents(t, earlyFT, "news")
		expectNothing(t, waitingFT)

		tc.release <- struct{}{}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: subscribe never finished", tc.channel)
		}
		expectEvents(t, waitingFT, append(append([]string{pusher.EventSubscriptionSucceeded}, tc.snapshot...), "news")...)
	}
}

// expectEvents reads the next frames of ft and checks their event names.
func expectEvents(t *testing.T, ft *fakeTransport, events ...string) {
	t.Helper()
	for _, want := range events {
		if f := next(t, ft); f.Event != want {
			t.Fatalf("got %s %s, want %s", f.Event, f.Data, want)
		}
	}
}

// memberOr is channel data for a presence channel, none for others.
func memberOr(channel, id string) string {
	if kind, _ := pusher.KindOf(channel); kind == pusher.KindPresence {
		return member(id)
	}
	return ""
}

// recordedThenGated is a channel store whose Subscribe of one socket waits, once the subscription is
// recorded, until the test lets it return: the window in which other nodes' changes pass by.
type recordedThenGated struct {
	*MemoryChannels
	socket           string
	entered, release chan struct{}
}

func (p *recordedThenGated) Subscribe(ctx context.Context, s Subscription) (Joined, error) {
	j, err := p.MemoryChannels.Subscribe(ctx, s)
	if s.SocketID == p.socket {
		p.entered <- struct{}{}
		<-p.release
	}
	return j, err
}

// TestCountPublishedWhileSubscribingIsNotMissed: a newer subscription count published while a
// subscription is between being recorded and returning (another socket joined, on any node) still
// reaches it after its subscription_succeeded; its own older count does not follow.
func TestCountPublishedWhileSubscribingIsNotMissed(t *testing.T) {
	b := NewMemoryBroker()
	store := &recordedThenGated{MemoryChannels: NewMemoryChannels(b), entered: make(chan struct{}), release: make(chan struct{})}
	s := newTestServer(t, Config{Broker: b, Channels: store, Apps: []pusher.App{
		{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true, SubscriptionCount: true}}})
	first, firstFT := newTestConn(t, s)
	subscribe(t, first, firstFT, "room", "")
	expectEvents(t, firstFT, pusher.EventSubscriptionCount) // 1

	waiting, waitingFT := newTestConn(t, s)
	store.socket = waiting.id
	done := make(chan struct{})
	go func() {
		defer close(done)
		waiting.handleFrame(subscribeFrame(t, waiting, "room", ""))
	}()
	<-store.entered // recorded (count 2), not yet returned
	third, thirdFT := newTestConn(t, s)
	subscribe(t, third, thirdFT, "room", "")
	expectEvents(t, thirdFT, pusher.EventSubscriptionCount) // 3
	close(store.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("subscribe never finished")
	}
	expectEvents(t, waitingFT, pusher.EventSubscriptionSucceeded)
	if f := next(t, waitingFT); f.Event != pusher.EventSubscriptionCount || string(f.Data) != `"{\"subscription_count\":3}"` {
		t.Fatalf("the waiting subscriber got %s %s, want the count of 3", f.Event, f.Data)
	}
	expectNothing(t, waitingFT) // its own count, 2, is older: not delivered after 3
}
