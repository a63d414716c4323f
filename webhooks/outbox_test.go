package webhooks

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// acks records the outbox acknowledgements Deliver calls back with.
type acks chan string

func (a acks) of(name string) func() { return func() { a <- name } }

// expect waits for exactly the named acknowledgements, in any order.
func (a acks) expect(t *testing.T, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for range names {
		select {
		case got := <-a:
			if !want[got] {
				t.Fatalf("acknowledged %q, want one of %v", got, names)
			}
			delete(want, got)
		case <-time.After(waitLimit):
			t.Fatalf("timed out waiting for the acknowledgements of %v", want)
		}
	}
}

// none checks nothing was acknowledged: the dispatcher finished with what it had, and a marker
// delivered afterwards proved it.
func (a acks) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-a:
		t.Fatalf("acknowledged %q too early", got)
	default:
	}
}

// TestDeliverAcknowledgesOnceDelivered: an outbox event is acknowledged only once its endpoint
// answered 2xx, not when it was queued nor after a failed attempt; and it is not debounced (the
// cluster applied the delay already).
func TestDeliverAcknowledgesOnceDelivered(t *testing.T) {
	h := start(t, Config{RetryBackoff: time.Second, RetryBackoffMax: time.Minute})
	h.rc.setRespond(func(n int, _ *http.Request, _ []byte) (int, error) {
		if n == 1 {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	a := make(acks, 10)
	h.d.Deliver(testAppID, vacated("presence-a"), a.of("vacated"))
	h.rc.expect(t, "channel_vacated:presence-a") // at once: no removal delay
	h.settled()
	a.none(t)
	h.clock.fireNext(t)
	h.rc.expect(t, "channel_vacated:presence-a")
	a.expect(t, "vacated")
}

// TestDeliverPairCancelsInQueue: a removal that meets its addition still waiting in the endpoint's
// queue cancels it; neither is sent, and both are acknowledged.
func TestDeliverPairCancelsInQueue(t *testing.T) {
	h, release, a := startHeld(t)
	h.d.Deliver(testAppID, added("presence-b", "u1"), a.of("added"))
	h.d.Deliver(testAppID, removed("presence-b", "u1"), a.of("removed"))
	a.expect(t, "added", "removed")
	h.d.Deliver(testAppID, occupied("marker"), a.of("marker"))
	release()
	h.rc.expect(t, "channel_occupied:marker")
	a.expect(t, "first", "marker") // each acknowledgement runs on a goroutine of its own: any order
}

// TestDeliverEveryEndpointFirst: with two endpoints the event is acknowledged once both have it.
func TestDeliverEveryEndpointFirst(t *testing.T) {
	h := start(t, Config{}, Endpoint{URL: "http://one.test/"}, Endpoint{URL: "http://two.test/"})
	release := h.rc.holdFirst(t, "two.test")
	a := make(acks, 10)
	h.d.Deliver(testAppID, occupied("c"), a.of("c"))
	h.rc.next(t)
	h.rc.next(t)
	h.settled()
	a.none(t)
	release()
	a.expect(t, "c")
}

// TestDeliverAfterShutdownIsNotAcknowledged: an event that arrives after Shutdown stays in the
// outbox for the next node: it is neither sent nor acknowledged.
func TestDeliverAfterShutdownIsNotAcknowledged(t *testing.T) {
	h := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a := make(acks, 1)
	h.d.Deliver(testAppID, occupied("late"), a.of("late"))
	a.none(t)
	if n := h.d.Stats().Delivered; n != 0 {
		t.Fatalf("delivered %d after shutdown", n)
	}
}

// TestDeliverNewerCountAcknowledgesTheOlder: a subscription_count that replaces a waiting one of its
// channel carries the acknowledgement from then on; the replaced entry is acknowledged at once, so a
// node that dies before sending leaves only the newest count in the outbox.
func TestDeliverNewerCountAcknowledgesTheOlder(t *testing.T) {
	h, release, a := startHeld(t)
	h.d.Deliver(testAppID, count("c", 1), a.of("one"))
	h.d.Deliver(testAppID, count("c", 2), a.of("two"))
	a.expect(t, "one")
	a.none(t)
	release()
	got := h.rc.expect(t, "subscription_count:c")
	if n := got[0].Hook.Events[0].SubscriptionCount; n == nil || *n != 2 {
		t.Fatalf("subscription_count sent %v, want 2", n)
	}
	a.expect(t, "first", "two")
}

// startHeld starts a dispatcher whose receiver holds its first request, an outbox event "first":
// what is delivered next waits in the endpoint's queue until release.
func startHeld(t *testing.T) (h *harness, release func(), a acks) {
	t.Helper()
	h = start(t, Config{})
	release = h.rc.holdFirst(t, "hook.test")
	a = make(acks, 10)
	h.d.Deliver(testAppID, occupied("first"), a.of("first"))
	h.rc.expect(t, "channel_occupied:first")
	return h, release, a
}
