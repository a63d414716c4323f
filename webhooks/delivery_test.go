package webhooks

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetryUntilDelivered: a receiver that fails three times (500, a network error, 503) and then
// answers 200 gets the same signed body four times, with exponentially growing, jittered waits in
// between, and nothing after the success.
func TestRetryUntilDelivered(t *testing.T) {
	h := start(t, Config{RetryBackoff: time.Second, RetryBackoffMax: time.Minute})
	h.rc.setRespond(func(n int, _ *http.Request, _ []byte) (int, error) {
		switch n {
		case 1:
			return http.StatusInternalServerError, nil
		case 2:
			return 0, errors.New("connection reset by peer")
		case 3:
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	h.emit(clientEvent("private-chat", `{"text":"hi"}`))
	first := h.rc.next(t)
	for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		wait := h.clock.fireNext(t)
		if wait < base/2 || wait > base {
			t.Errorf("wait before retry %d = %v, want within [%v, %v]", i+1, wait, base/2, base)
		}
		again := h.rc.next(t)
		if !bytes.Equal(again.Body, first.Body) || again.Header.Get("X-Pusher-Signature") != first.Header.Get("X-Pusher-Signature") {
			t.Fatalf("retry %d changed the request: %s vs %s", i+1, again.Body, first.Body)
		}
	}
	waitUntil(t, "the fourth attempt is counted as delivered", func() bool { return h.d.Stats().Delivered == 1 })
	h.settled()
	if at, ok := h.clock.pending(); ok {
		t.Fatalf("a retry is still scheduled at %v after the success", at)
	}
	h.emit(clientEvent("private-chat", `"marker"`))
	if r := h.rc.next(t); !strings.Contains(string(r.Body), "marker") {
		t.Fatalf("after the success the endpoint got %s, want the marker", r.Body)
	}
	waitUntil(t, "the marker is delivered", func() bool { return h.d.Stats().Delivered == 2 })
	st := h.d.Stats()
	if st.Retried != 3 || st.DeliveredEvents != 2 || st.DroppedTotal() != 0 {
		t.Errorf("stats = %+v, want 3 retries, 2 events delivered, none dropped", st)
	}
}

// TestReceiverDownLongerThanRetryWindow: a receiver that never answers 2xx is retried until the
// retry window (counted from the request's creation) has passed, with a last attempt at its very
// end; then the request is dropped, counted and logged, and the endpoint moves on.
func TestReceiverDownLongerThanRetryWindow(t *testing.T) {
	const window = 30 * time.Second
	h := start(t, Config{RetryFor: window, RetryBackoff: time.Second, RetryBackoffMax: 8 * time.Second})
	var down atomic.Bool
	down.Store(true)
	h.rc.setRespond(func(int, *http.Request, []byte) (int, error) {
		if down.Load() {
			return 0, errors.New("dial tcp: connection refused")
		}
		return http.StatusNoContent, nil
	})
	created := h.clock.Now()
	h.emit(occupied("lost"))
	attempts := 0
	var last time.Time
	// Each round takes one attempt, then fires its retry; the receiver records requests without
	// waiting for the test, so the loop ends on the drop seen after an attempt, never before one.
	for {
		if attempts > 40 {
			t.Fatal("still retrying after 40 attempts")
		}
		h.rc.next(t)
		attempts++
		last = h.clock.Now()
		waitUntil(t, "the failure is scheduled for a retry or dropped", func() bool {
			_, scheduled := h.clock.pending()
			return scheduled || h.d.Stats().Dropped[DropRetryExpired] > 0
		})
		if h.d.Stats().Dropped[DropRetryExpired] > 0 {
			break
		}
		h.clock.fireNext(t)
	}
	if got := last.Sub(created); got != window {
		t.Errorf("last attempt %v after creation, want exactly the %v window", got, window)
	}
	if attempts < 5 {
		t.Errorf("%d attempts in a %v window with 1s..8s back-off, want at least 5", attempts, window)
	}
	st := h.d.Stats()
	if st.Dropped[DropRetryExpired] != 1 || st.Retried != int64(attempts-1) || st.Delivered != 0 {
		t.Errorf("stats = %+v after %d attempts", st, attempts)
	}
	waitUntil(t, "the drop is logged with its url and reason", func() bool {
		logs := h.logs.String()
		return strings.Contains(logs, `"url":"http://hook.test/"`) && strings.Contains(logs, `connection refused","reason":"retry_expired"`)
	})

	// The receiver comes back: the next request goes through at once.
	down.Store(false)
	h.emit(occupied("after"))
	h.rc.expect(t, "channel_occupied:after")
	waitUntil(t, "the request after the drop is delivered", func() bool { return h.d.Stats().Delivered == 1 })
}

// TestFailingEndpointKeepsOrderAndSweepsExpired: while the front request is retried, later ones
// wait (a receiver never sees a removal before the addition it follows); requests whose window
// passed while they waited are dropped with the front one, and fresh ones are then delivered.
func TestFailingEndpointKeepsOrderAndSweepsExpired(t *testing.T) {
	h := start(t, Config{RetryFor: 10 * time.Second, RetryBackoff: 4 * time.Second, RetryBackoffMax: 4 * time.Second, RemovalDelay: -1})
	h.rc.setRespond(func(_ int, _ *http.Request, body []byte) (int, error) {
		if bytes.Contains(body, []byte("presence-x")) {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	h.emit(added("presence-x", "u1"))
	h.rc.expect(t, "member_added:presence-x:u1")
	h.emit(removed("presence-x", "u1")) // waits behind the failing member_added
	if n := h.d.Stats().Retried; n != 0 {
		t.Fatalf("a new request made the endpoint retry before its back-off ended (%d retries)", n)
	}
	h.clock.fireNext(t)
	h.rc.expect(t, "member_added:presence-x:u1") // the retry, not the removal

	// A fresh request, created late in the first one's window.
	at := h.clock.next(t)
	h.clock.advanceTo(at.Add(-time.Millisecond))
	h.emit(occupied("fresh"))
	for h.d.Stats().Dropped[DropRetryExpired] == 0 {
		h.clock.fireNext(t)
		h.rc.expect(t, "member_added:presence-x:u1")
		waitUntil(t, "the failure is handled", func() bool {
			_, scheduled := h.clock.pending()
			return scheduled || h.d.Stats().Dropped[DropRetryExpired] > 0
		})
	}
	h.settled() // the loop records the drop and then what goes with it
	if got := h.d.Stats().Dropped[DropRetryExpired]; got != 2 {
		t.Fatalf("dropped %d events, want 2: member_added and the member_removed waiting behind it", got)
	}
	h.rc.expect(t, "channel_occupied:fresh")
	waitUntil(t, "the fresh request is delivered", func() bool { return h.d.Stats().Delivered == 1 })
	if st := h.d.Stats(); st.DroppedTotal() != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// TestRedirectIsNotFollowed: the default client treats a 3xx as a failure to retry; following it
// would turn the POST into a GET whose 200 would count a webhook as delivered that never was.
func TestRedirectIsNotFollowed(t *testing.T) {
	var followed, posted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed.Add(1)
			return
		}
		posted.Add(1)
		http.Redirect(w, r, "/moved", http.StatusFound)
	}))
	defer srv.Close()
	clock := newFakeClock()
	d, err := New(Config{Clock: clock, RetryFor: -1, Apps: []App{{ID: "a", Key: "k", Secret: "s", Endpoints: []Endpoint{{URL: srv.URL + "/hook"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	d.Emit("a", occupied("c"))
	waitUntil(t, "the redirected request is dropped", func() bool { return d.Stats().Dropped[DropRetryExpired] == 1 })
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posted.Load() != 1 || followed.Load() != 0 {
		t.Errorf("posted %d, followed the redirect %d times; want 1 and 0", posted.Load(), followed.Load())
	}
}

// TestAttemptTimeout: an endpoint that does not answer within Timeout fails the attempt.
func TestAttemptTimeout(t *testing.T) {
	h := start(t, Config{Timeout: 50 * time.Millisecond, RetryFor: -1})
	h.rc.setRespond(func(_ int, r *http.Request, _ []byte) (int, error) {
		<-r.Context().Done()
		return 0, r.Context().Err()
	})
	h.emit(occupied("slow"))
	h.rc.next(t)
	waitUntil(t, "the timed-out attempt is dropped", func() bool { return h.d.Stats().Dropped[DropRetryExpired] == 1 })
	if !strings.Contains(h.logs.String(), "deadline exceeded") {
		t.Errorf("the timeout is not in the log:\n%s", h.logs.String())
	}
}

func TestBackoffBounds(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second, 7: time.Minute, 30: time.Minute} {
		for range 200 {
			got := backoff(n, time.Second, time.Minute)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, got, want/2, want)
			}
		}
	}
}
