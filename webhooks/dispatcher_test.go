package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEndpointQueueOverflow: an endpoint's queue of waiting events is bounded (the request in flight
// is not in it); what does not fit, with nothing worth less waiting, is counted as
// endpoint_queue_full and logged, and Emit returns at once all along.
func TestEndpointQueueOverflow(t *testing.T) {
	h := start(t, Config{EndpointQueueSize: 2})
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(occupied("c0"))
	h.rc.expect(t, "channel_occupied:c0") // in flight, held by the receiver
	h.emit(occupied("c1"), occupied("c2"), occupied("c3"), occupied("c4"))
	if st := h.d.Stats(); st.Dropped[DropEndpointQueueFull] != 2 || st.Queued != 2 {
		t.Errorf("stats = %+v, want 2 endpoint_queue_full and 2 queued", st)
	}
	release()
	h.rc.expect(t, "channel_occupied:c1 channel_occupied:c2") // a full queue is a backlog: packed
	waitUntil(t, "the kept events are delivered", func() bool { return h.d.Stats().DeliveredEvents == 3 })
	if n := strings.Count(h.logs.String(), `"reason":"endpoint_queue_full"`); n != 1 {
		t.Errorf("the overflow was logged %d times, want once (throttled):\n%s", n, h.logs.String())
	}
}

// TestAppsDoNotShareBudgets: app A floods Emit from several goroutines while its receiver hangs;
// app B, emitting at the same time, loses nothing and is not held up. Every Emit returns at once,
// and what A loses is A's own overflow, counted exactly.
func TestAppsDoNotShareBudgets(t *testing.T) {
	const perFlooder, flooders, bEvents = 10_000, 4, 200
	endpoint := func(path string) []Endpoint { return []Endpoint{{URL: "http://hook.test/" + path}} }
	h := start(t, Config{Apps: []App{
		{ID: "a", Key: "ka", Secret: "sa", Endpoints: endpoint("a")},
		{ID: "b", Key: "kb", Secret: "sb", Endpoints: endpoint("b")},
	}})
	h.rc.holdFirst(t, "/a")
	var wg sync.WaitGroup
	for g := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perFlooder {
				h.d.Emit("a", clientEvent("private-a", fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)))
			}
		}()
	}
	for i := range bEvents {
		h.d.Emit("b", clientEvent("private-b", fmt.Sprint(i)))
	}
	wg.Wait()
	got := 0
	for got < bEvents {
		r := h.rc.next(t)
		if strings.HasSuffix(r.URL, "/b") {
			got += len(r.Hook.Events)
		}
	}
	const queued = 10_000 // the default EndpointQueueSize, all of it app A's
	st := h.d.Stats()
	if want := int64(perFlooder*flooders - 1 - queued); st.Dropped[DropEndpointQueueFull] != want || st.DroppedTotal() != want {
		t.Errorf("stats = %+v, want exactly app A's overflow, %d, dropped as endpoint_queue_full", st, want)
	}
}

// TestShutdownFlushesPendingRemovalsAndBatches: Shutdown sends removals that were waiting for their
// delay and the batch in progress at once, in order, and returns when they are delivered; later
// events are counted as dropped (shutdown).
func TestShutdownFlushesPendingRemovalsAndBatches(t *testing.T) {
	h := start(t, Config{Apps: []App{{
		ID: testAppID, Key: testKey, Secret: testSecret,
		Batching:  Batching{Enabled: true, Window: time.Hour},
		Endpoints: []Endpoint{{URL: "http://hook.test/"}},
	}}, RemovalDelay: time.Hour})
	h.emit(occupied("presence-p"), added("presence-p", "u"))
	h.clock.fireNext(t) // the batch window
	h.rc.expect(t, "channel_occupied:presence-p member_added:presence-p:u")
	waitUntil(t, "the batch is delivered", func() bool { return h.d.Stats().Delivered == 1 })
	h.emit(occupied("a"), removed("presence-p", "u"), vacated("presence-p"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	h.rc.expect(t, "channel_occupied:a member_removed:presence-p:u channel_vacated:presence-p")
	h.emit(occupied("late"))
	st := h.d.Stats()
	if st.Delivered != 2 || st.DeliveredEvents != 5 || st.Dropped[DropShutdown] != 1 {
		t.Errorf("stats = %+v, want 2 requests of 5 events delivered and the late event dropped", st)
	}
	if err := h.d.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

// TestShutdownDeadlineCountsUndelivered: at the deadline, an attempt in flight is cancelled and
// every request not delivered — backing off, in flight or waiting — is counted, logged and reported.
func TestShutdownDeadlineCountsUndelivered(t *testing.T) {
	h := start(t, Config{RetryBackoff: time.Hour, RetryBackoffMax: time.Hour},
		Endpoint{URL: "http://hook.test/failing"}, Endpoint{URL: "http://hook.test/hanging"})
	h.rc.setRespond(func(_ int, r *http.Request, _ []byte) (int, error) {
		if strings.HasSuffix(r.URL.Path, "hanging") {
			<-r.Context().Done()
			return 0, r.Context().Err()
		}
		return http.StatusInternalServerError, nil
	})
	h.emit(occupied("c1"), occupied("c2"), occupied("c3"))
	h.rc.next(t)
	h.rc.next(t)
	h.clock.next(t) // the failing endpoint is backing off
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begun := time.Now()
	err := h.d.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "6 events undelivered") {
		t.Fatalf("Shutdown = %v, want 6 events undelivered", err)
	}
	if took := time.Since(begun); took > 2*time.Second {
		t.Errorf("Shutdown took %v past a 100ms deadline", took)
	}
	if got := h.d.Stats().Dropped[DropShutdown]; got != 6 {
		t.Errorf("dropped (shutdown) = %d, want 6", got)
	}
	logs := h.logs.String()
	for _, url := range []string{"failing", "hanging"} {
		if !strings.Contains(logs, `"url":"http://hook.test/`+url+`","reason":"shutdown","events":3`) {
			t.Errorf("no shutdown drop line for %s:\n%s", url, logs)
		}
	}
}

// TestEveryEventIsDeliveredOrCounted: under concurrent Emit and a Shutdown in the middle, every
// emitted event ends up delivered or counted as dropped; none disappears silently.
func TestEveryEventIsDeliveredOrCounted(t *testing.T) {
	h := start(t, Config{EndpointQueueSize: 256})
	h.rc.mu.Lock()
	h.rc.discard = true
	h.rc.mu.Unlock()
	var emitted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h.d.Emit(testAppID, clientEvent("private-load", fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)))
				emitted.Add(1)
				runtime.Gosched() // leave the two CPUs some room for the loop and the workers
			}
		}()
	}
	waitUntil(t, "some events are delivered", func() bool { return h.d.Stats().Delivered > 50 })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	close(stop)
	wg.Wait()
	st := h.d.Stats()
	if got := st.DeliveredEvents + st.DroppedTotal(); got != emitted.Load() {
		t.Errorf("delivered %d + dropped %d = %d, emitted %d", st.DeliveredEvents, st.DroppedTotal(), got, emitted.Load())
	}
	if st.Dropped[DropShutdown] == 0 {
		t.Errorf("no event was emitted after Shutdown; the test did not exercise the race: %+v", st)
	}
}

// TestConfigErrorsNameTheField: New refuses bad configuration with a message naming the field.
func TestConfigErrorsNameTheField(t *testing.T) {
	app := func(e ...Endpoint) App { return App{ID: "a1", Key: "k", Secret: "s", Endpoints: e} }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad url", Config{Apps: []App{app(Endpoint{URL: "ftp://x/hook"})}}, `app "a1": webhooks[0].url: "ftp://x/hook" is not an absolute http or https URL`},
		{"relative url", Config{Apps: []App{app(Endpoint{URL: "/hook"})}}, "webhooks[0].url"},
		{"empty url", Config{Apps: []App{app(Endpoint{URL: "http://ok/"}, Endpoint{})}}, "webhooks[1].url: is empty"},
		{"unknown type", Config{Apps: []App{app(Endpoint{URL: "http://h/", EventTypes: []string{"member_added", "channel_created"}})}}, `event_types: unknown event type "channel_created"`},
		{"unknown naming", Config{Apps: []App{app(Endpoint{URL: "http://h/", Naming: "soketi"})}}, `naming: unknown naming mode "soketi"`},
		{"reserved header", Config{Apps: []App{app(Endpoint{URL: "http://h/", Headers: map[string]string{"content-type": "text/plain"}})}}, "headers: content-type is set by Herald"},
		{"bad header", Config{Apps: []App{app(Endpoint{URL: "http://h/", Headers: map[string]string{"X Bad": "v"}})}}, `headers: "X Bad"`},
		{"negative window", Config{Apps: []App{{ID: "a1", Key: "k", Secret: "s", Batching: Batching{Window: -1}}}}, "batching.window"},
		{"no secret", Config{Apps: []App{{ID: "a1", Key: "k"}}}, "key and secret"},
		{"twice", Config{Apps: []App{app(), app()}}, "listed twice"},
		{"negative workers", Config{Workers: -1}, "workers"},
		{"too many endpoints", Config{Apps: []App{app(slices.Repeat([]Endpoint{{URL: "http://h/"}}, MaxEndpoints+1)...)}}, "65 endpoints, at most 64"},
	}
	for _, tt := range tests {
		d, err := New(tt.cfg)
		if err == nil {
			_ = d.Shutdown(context.Background())
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	for _, alias := range []string{"channel_added", "channel_removed", "user_added", "user_removed", "subscription_count", "cache_miss"} {
		if err := (Endpoint{URL: "https://h/x", EventTypes: []string{alias}}).Validate(); err != nil {
			t.Errorf("%s: %v", alias, err)
		}
	}
}
