package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// TestWaitingPairsCancelOut: while an endpoint is busy, an addition still waiting in its queue and
// the removal that follows it cancel out at once, channel and member alike: neither is sent, no
// removal is scheduled, and the rest goes out in order.
func TestWaitingPairsCancelOut(t *testing.T) {
	h := start(t, Config{})
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(occupied("held"))
	h.rc.expect(t, "channel_occupied:held")
	h.emit(occupied("gone"), occupied("presence-p"), added("presence-p", "u"),
		removed("presence-p", "u"), vacated("gone"), occupied("stays"))
	if st := h.d.Stats(); st.Coalesced != 4 || st.Queued != 2 {
		t.Errorf("stats = %+v, want 4 coalesced and 2 queued", st)
	}
	if at, ok := h.clock.pending(); ok {
		t.Errorf("a removal is scheduled at %v for a pair that was never sent", at)
	}
	release()
	h.rc.expect(t, "channel_occupied:presence-p", "channel_occupied:stays")
}

// TestPairCancelsWhenRemovalIsDue: one endpoint sent the occupied at once, another still has it
// waiting behind a slow request. The vacated waits its delay for the first; when it is due, the
// second's waiting occupied is cancelled with it, and that endpoint hears of neither.
func TestPairCancelsWhenRemovalIsDue(t *testing.T) {
	h := start(t, Config{}, Endpoint{URL: "http://hook.test/fast"}, Endpoint{URL: "http://hook.test/slow"})
	release := h.rc.holdFirst(t, "slow")
	h.emit(occupied("held"))
	h.rc.next(t)
	h.rc.next(t)
	waitUntil(t, "the fast endpoint is idle", func() bool { return h.d.Stats().Delivered == 1 })
	h.emit(occupied("c"))
	if r := h.rc.next(t); r.URL != "http://hook.test/fast" || strings.Join(r.names(), " ") != "channel_occupied:c" {
		t.Fatalf("got %s %v, want the fast endpoint's channel_occupied:c", r.URL, r.names())
	}
	h.emit(vacated("c"))
	if moved := h.clock.fireNext(t); moved != 3*time.Second {
		t.Fatalf("the removal fired after %v, want the 3s delay", moved)
	}
	h.rc.expect(t, "channel_vacated:c")
	h.settled()
	if st := h.d.Stats(); st.Coalesced != 2 {
		t.Errorf("stats = %+v, want the slow endpoint's occupied and vacated coalesced", st)
	}
	release()
	h.emit(occupied("marker"))
	got := map[string]string{}
	for range 2 {
		r := h.rc.next(t)
		got[r.URL] = strings.Join(r.names(), " ")
	}
	if got["http://hook.test/slow"] != "channel_occupied:marker" || got["http://hook.test/fast"] != "channel_occupied:marker" {
		t.Errorf("after the held request: %v, want only the marker on each endpoint", got)
	}
}

// TestBatchedEventsCancelOneByOne: in a batch still waiting for its window, a member's added and
// removed cancel out and the other events of the batch go unchanged.
func TestBatchedEventsCancelOneByOne(t *testing.T) {
	h := start(t, Config{Apps: []App{{
		ID: testAppID, Key: testKey, Secret: testSecret,
		Batching:  Batching{Enabled: true, Window: time.Second},
		Endpoints: []Endpoint{{URL: "http://hook.test/"}},
	}}})
	h.emit(occupied("presence-a"), added("presence-a", "u1"), added("presence-a", "u2"), removed("presence-a", "u1"))
	h.clock.fireNext(t)
	h.rc.expect(t, "channel_occupied:presence-a member_added:presence-a:u2")
}

// TestWaitingCountsAndCacheMissesMerge: a newer subscription_count replaces the one waiting for its
// channel, in its place; a second cache_miss adds nothing to the one waiting.
func TestWaitingCountsAndCacheMissesMerge(t *testing.T) {
	h := start(t, Config{})
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(occupied("held"))
	h.rc.expect(t, "channel_occupied:held")
	count := func(ch string, n int) pusher.WebhookEvent {
		return pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: ch, SubscriptionCount: &n}
	}
	miss := pusher.WebhookEvent{Name: pusher.WebhookCacheMiss, Channel: "cache-x"}
	h.emit(count("room", 1), miss, count("hall", 5), count("room", 2), miss, count("room", 0))
	if st := h.d.Stats(); st.Coalesced != 3 || st.Queued != 3 {
		t.Errorf("stats = %+v, want 3 coalesced and 3 queued", st)
	}
	release()
	got := h.rc.expect(t, "subscription_count:room", "cache_miss:cache-x", "subscription_count:hall")
	if n := got[0].Hook.Events[0].SubscriptionCount; n == nil || *n != 0 {
		t.Errorf("room's count = %v, want the latest, 0", n)
	}
}

// TestMemberEventsSurviveOccupancyFlood: a full queue of public-channel occupancy sheds its oldest
// for a presence channel's occupied and member_added, and drops more public occupancy rather than
// queue it. A shed or dropped occupied takes its vacated with it; the member's events arrive in
// order, and its removals after them.
func TestMemberEventsSurviveOccupancyFlood(t *testing.T) {
	const size = 20
	h := start(t, Config{EndpointQueueSize: size})
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(occupied("held"))
	h.rc.expect(t, "channel_occupied:held")
	flood := func(from, to int) {
		for i := from; i < to; i++ {
			h.emit(occupied(fmt.Sprintf("flood-%d", i)))
		}
	}
	flood(0, size)
	h.emit(occupied("presence-room"), added("presence-room", "u1"))
	flood(size, 2*size)
	h.emit(vacated("flood-0"), vacated("flood-30")) // shed, dropped: nothing to say
	h.emit(vacated("flood-5"))                      // still waiting: cancels out
	st := h.d.Stats()
	if st.Dropped[DropShed] != 2 || st.Dropped[DropEndpointQueueFull] != size || st.Coalesced != 2 || st.Queued != size-1 {
		t.Errorf("stats = %+v, want 2 shed, %d endpoint_queue_full, 2 coalesced, %d queued", st, size, size-1)
	}
	if !strings.Contains(h.logs.String(), `"reason":"shed","event":"channel_occupied"`) {
		t.Errorf("shedding not logged:\n%s", h.logs.String())
	}
	release()
	var got []string
	for len(got) < size-1 {
		got = append(got, h.rc.next(t).names()...)
	}
	var want []string
	for i := 2; i < size; i++ {
		if i != 5 {
			want = append(want, fmt.Sprintf("channel_occupied:flood-%d", i))
		}
	}
	want = append(want, "channel_occupied:presence-room", "member_added:presence-room:u1")
	if g, w := strings.Join(got, " "), strings.Join(want, " "); g != w {
		t.Fatalf("delivered [%s]\nwant      [%s]", g, w)
	}
	h.emit(removed("presence-room", "u1"), vacated("presence-room"))
	h.clock.fireNext(t)
	h.rc.expect(t, "member_removed:presence-room:u1", "channel_vacated:presence-room")
}

// TestBacklogPacksEvents: an app that does not batch gets one event per request, until its endpoint
// falls behind: 100 events waiting, or the front one waiting 100 ms. Then requests carry up to 50
// events, in order, the backlog is counted and logged, and once the queue is empty requests carry
// one event again.
func TestBacklogPacksEvents(t *testing.T) {
	h := start(t, Config{})
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(clientEvent("private-chat", "0"))
	h.rc.expect(t, "client_event:private-chat")
	for i := 1; i <= 120; i++ {
		h.emit(clientEvent("private-chat", fmt.Sprint(i)))
	}
	if st := h.d.Stats(); st.Backlogged != 1 || st.Queued != 120 {
		t.Errorf("stats = %+v, want the endpoint backlogged with 120 queued", st)
	}
	if !strings.Contains(h.logs.String(), `"app_id":"`+testAppID+`","url":"http://hook.test/","reason":"backlog","queued":100`) {
		t.Errorf("the backlog was not logged:\n%s", h.logs.String())
	}
	release()
	next := 1
	for _, want := range []int{50, 50, 20} {
		r := h.rc.next(t)
		if len(r.Hook.Events) != want {
			t.Fatalf("request of %d events, want %d", len(r.Hook.Events), want)
		}
		for _, e := range r.Hook.Events {
			if e.Data != fmt.Sprint(next) {
				t.Fatalf("event %q where %d was next: out of order", e.Data, next)
			}
			next++
		}
	}
	waitUntil(t, "the backlog is delivered", func() bool { return h.d.Stats().DeliveredEvents == 121 })
	if st := h.d.Stats(); st.Packed != 3 || st.Backlogged != 0 || st.Queued != 0 {
		t.Errorf("stats = %+v, want 3 packed requests and no backlog left", st)
	}

	// A few events that wait 100 ms behind a slow request are a backlog too.
	slow := make(chan struct{})
	h.rc.setRespond(func(n int, _ *http.Request, _ []byte) (int, error) {
		if n == 5 {
			<-slow
		}
		return http.StatusOK, nil
	})
	h.emit(clientEvent("private-chat", "slow"))
	h.rc.next(t)
	h.emit(clientEvent("private-chat", "a"), clientEvent("private-chat", "b"))
	h.clock.advanceTo(h.clock.Now().Add(backlogAge))
	close(slow)
	h.rc.expect(t, "client_event:private-chat client_event:private-chat")
	waitUntil(t, "the pair is delivered", func() bool { return h.d.Stats().DeliveredEvents == 124 })
	h.emit(clientEvent("private-chat", "alone"))
	h.rc.expect(t, "client_event:private-chat")
}

// BenchmarkEmitFlood is what one occupied/vacated pair of a flood costs the goroutine that emits
// it, now that Emit does the bookkeeping itself: on a busy endpoint the pair cancels in the queue;
// on a full one the occupied is dropped and its vacated has nothing to say.
func BenchmarkEmitFlood(b *testing.B) {
	for _, bc := range []struct {
		name string
		open int // channels occupied before the oldest is vacated
	}{{"cancel", 0}, {"full", 20_000}} {
		b.Run(bc.name, func(b *testing.B) {
			hold := make(chan struct{})
			d, err := New(Config{EndpointQueueSize: 10_000, Clock: newFakeClock(), Client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				<-hold
				return nil, http.ErrServerClosed
			})}, Apps: []App{{ID: "a", Key: "k", Secret: "s", Endpoints: []Endpoint{{URL: "http://hook.test/"}}}}})
			if err != nil {
				b.Fatal(err)
			}
			names := make([]string, bc.open+b.N)
			for i := range names {
				names[i] = fmt.Sprintf("flood-%d", i)
			}
			d.Emit("a", occupied("held"))
			b.ResetTimer()
			for i := range b.N {
				d.Emit("a", occupied(names[i+bc.open]))
				d.Emit("a", vacated(names[i]))
			}
			b.StopTimer()
			close(hold)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = d.Shutdown(ctx) // at once: what is queued is counted, not delivered
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
