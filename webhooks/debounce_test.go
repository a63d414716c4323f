package webhooks

import (
	"fmt"
	"testing"
	"time"
)

// TestReloadWithinDelaySendsNothing: a channel and a member that leave and come back within the
// removal delay produce neither the removal nor a second occupied/added. Absence is proved by
// markers on other channels, sent after the delay has passed.
func TestReloadWithinDelaySendsNothing(t *testing.T) {
	h := start(t, Config{})
	h.emit(occupied("presence-room"), added("presence-room", "u1"))
	h.rc.expect(t, "channel_occupied:presence-room", "member_added:presence-room:u1")

	// The page reloads: the last socket leaves, then a new one joins.
	h.emit(removed("presence-room", "u1"), vacated("presence-room"))
	at := h.clock.next(t)
	if got := at.Sub(h.clock.Now()); got != 3*time.Second {
		t.Fatalf("removal delay = %v, want the default 3s", got)
	}
	h.emit(occupied("presence-room"), added("presence-room", "u1"))
	h.emit(occupied("marker-1"))
	h.rc.expect(t, "channel_occupied:marker-1")

	// Past the delay nothing was pending: the next request is the next marker.
	if at, ok := h.clock.pending(); ok {
		t.Fatalf("a timer is still pending at %v after the reload", at)
	}
	h.clock.advanceTo(at.Add(time.Hour))
	h.emit(occupied("marker-2"))
	h.rc.expect(t, "channel_occupied:marker-2")
	if n := len(h.occupancy()); n != 4 {
		t.Errorf("debounce holds %d entries, want 4 (presence-room, its member u1, marker-1, marker-2)", n)
	}
}

// TestRemovalAfterDelay: removals wait for the delay and then go out in the order they happened
// (member_removed before channel_vacated), exactly once.
func TestRemovalAfterDelay(t *testing.T) {
	h := start(t, Config{RemovalDelay: 2 * time.Second})
	h.emit(occupied("presence-a"), added("presence-a", "u1"), added("presence-a", "u2"))
	h.rc.expect(t, "channel_occupied:presence-a", "member_added:presence-a:u1", "member_added:presence-a:u2")

	h.emit(removed("presence-a", "u1"))
	first := h.clock.next(t)
	h.clock.advanceTo(first.Add(-time.Millisecond)) // not yet
	h.emit(removed("presence-a", "u2"), vacated("presence-a"), occupied("marker"))
	h.rc.expect(t, "channel_occupied:marker")

	if moved := h.clock.fireNext(t); moved != time.Millisecond {
		t.Fatalf("first removal fired %v after the clock was 1ms short of it", moved)
	}
	h.rc.expect(t, "member_removed:presence-a:u1")
	h.clock.fireNext(t)
	h.rc.expect(t, "member_removed:presence-a:u2", "channel_vacated:presence-a")
	if _, ok := h.clock.pending(); ok {
		t.Fatal("a timer is pending after every removal went out")
	}
	h.emit(occupied("marker-2"))
	h.rc.expect(t, "channel_occupied:marker-2")
}

// TestReportsOutOfOrder: the server reports transitions from different connection goroutines, so a
// vacated can arrive before the occupied that preceded it, or two occupieds in a row. The receivers
// still see occupied and vacated alternate, ending in the true state.
func TestReportsOutOfOrder(t *testing.T) {
	h := start(t, Config{RemovalDelay: time.Second})

	// True order: occupied, vacated. Arrival: vacated, occupied. The channel is empty: nothing to say.
	h.emit(vacated("swapped"), occupied("swapped"), occupied("marker-1"))
	h.rc.expect(t, "channel_occupied:marker-1")

	// True order: occupied, vacated, occupied, vacated. Arrival: occupied, occupied, vacated, vacated.
	h.emit(occupied("doubled"), occupied("doubled"))
	h.rc.expect(t, "channel_occupied:doubled")
	h.emit(vacated("doubled"))
	if _, ok := h.clock.pending(); ok {
		t.Fatal("a removal was scheduled while one report still says occupied")
	}
	h.emit(vacated("doubled"))
	h.clock.fireNext(t)
	h.rc.expect(t, "channel_vacated:doubled")

	for k := range h.occupancy() {
		if k.channel == "swapped" || k.channel == "doubled" {
			t.Errorf("state for %q kept after it settled empty", k.channel)
		}
	}
}

// TestNoDelayMeansImmediateRemovals: a negative delay sends removals at once.
func TestNoDelayMeansImmediateRemovals(t *testing.T) {
	h := start(t, Config{RemovalDelay: -1})
	h.emit(occupied("c"), vacated("c"), occupied("c"))
	h.rc.expect(t, "channel_occupied:c", "channel_vacated:c", "channel_occupied:c")
}

// TestManyRemovalsDueTogether: more removals due at one moment than the loop fires under one hold
// of the lock all go out, in the order they happened.
func TestManyRemovalsDueTogether(t *testing.T) {
	const n = 3*fireBatch + 1
	h := start(t, Config{})
	h.rc.mu.Lock()
	h.rc.discard = true
	h.rc.mu.Unlock()
	for i := range n {
		h.emit(occupied(fmt.Sprint("c", i)))
	}
	waitUntil(t, "the occupieds are delivered", func() bool { return h.d.Stats().DeliveredEvents == n })
	for i := range n {
		h.emit(vacated(fmt.Sprint("c", i)))
	}
	h.clock.fireNext(t)
	waitUntil(t, "the vacateds are delivered", func() bool { return h.d.Stats().DeliveredEvents == 2*n })
	if n := len(h.occupancy()); n != 0 {
		t.Errorf("%d debounce entries left after every channel was vacated", n)
	}
}
