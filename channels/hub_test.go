package channels

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/herald-rt/herald/pusher"
)

func TestHubFanoutReachesEverySubscriberButTheExcluded(t *testing.T) {
	s := newTestServer(t, Config{})
	var conns []*Conn
	var fts []*fakeTransport
	for range 3 {
		c, ft := newTestConn(t, s)
		subscribe(t, c, ft, "room", "")
		conns, fts = append(conns, c), append(fts, ft)
	}
	k := channelKey{testAppID, "room"}
	if n := s.hub.fanout(&Message{AppID: testAppID, Channel: "room", Frame: []byte(`{"event":"e","channel":"room","data":"1"}`), Except: conns[1].id}); n != 2 {
		t.Fatalf("fanout delivered to %d, want 2", n)
	}
	for i, ft := range fts {
		if i == 1 {
			expectNothing(t, ft)
			continue
		}
		if f := next(t, ft); f.Event != "e" {
			t.Errorf("conn %d got %s", i, f.Event)
		}
	}
	if info, _ := s.store.Info(context.Background(), testAppID, k.name); info.Subscriptions != 3 {
		t.Errorf("count = %d, want 3", info.Subscriptions)
	}
	if n := s.hub.fanout(&Message{AppID: testAppID, Channel: "nobody", Frame: []byte("{}")}); n != 0 {
		t.Errorf("fanout to an empty channel delivered %d", n)
	}
}

// TestHubRemoveKeepsIndices adds and removes subscriptions in random order and checks after each step
// that every remaining subscriber gets exactly one copy — the swap-remove must keep indices right.
func TestHubRemoveKeepsIndices(t *testing.T) {
	s := newTestServer(t, Config{})
	h := newHub()
	k := channelKey{testAppID, "c"}
	rng := rand.New(rand.NewPCG(1, 2))
	var live []*subscription
	fts := map[*Conn]*fakeTransport{}
	for step := range 300 {
		if len(live) == 0 || rng.IntN(3) > 0 {
			c, ft := newTestConn(t, s)
			fts[c] = ft
			live = append(live, h.add(k, c, pusher.Member{}, false, nil))
		} else {
			i := rng.IntN(len(live))
			h.remove(live[i])
			live = append(live[:i], live[i+1:]...)
			if (h.lookup(k) == nil) != (len(live) == 0) {
				t.Fatalf("step %d: channel kept %v with %d live", step, h.lookup(k) != nil, len(live))
			}
		}
		if n := h.fanout(&Message{AppID: k.app, Channel: k.name, Frame: []byte(`{}`)}); n != len(live) {
			t.Fatalf("step %d: fanout reached %d of %d", step, n, len(live))
		}
		for _, sub := range live {
			next(t, fts[sub.conn])
		}
	}
}

func TestStoreListsOnlyTheApp(t *testing.T) {
	s := newTestServer(t, Config{})
	c, ft := newTestConn(t, s)
	subscribe(t, c, ft, "a", "")
	subscribe(t, c, ft, "b", "")
	got := map[string]int{}
	list, _ := s.store.List(context.Background(), testAppID, "", false)
	for _, ch := range list {
		got[ch.Name] = ch.Subscriptions
	}
	if len(got) != 2 || got["a"] != 1 || got["b"] != 1 {
		t.Errorf("channels = %v", got)
	}
	if other, _ := s.store.List(context.Background(), "other-app", "", false); len(other) != 0 {
		t.Errorf("another app lists %v", other)
	}
}
