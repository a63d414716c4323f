package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/pusher"
)

const (
	testAppID  = "1001"
	testKey    = "wh-key"
	testSecret = "wh-secret"
	waitLimit  = 5 * time.Second
)

// fakeClock is a Clock that moves only when a test moves it. Tests wait for the dispatcher's timer
// with next, and fire it with advanceTo.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever timers change
}

type fakeTimer struct {
	c     chan time.Time
	at    time.Time
	clock *fakeClock
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:     time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		timers:  map[*fakeTimer]struct{}{},
		changed: make(chan struct{}),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers[t] = struct{}{}
	c.notify()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	_, pending := t.clock.timers[t]
	delete(t.clock.timers, t)
	t.clock.notify()
	return pending
}

func (c *fakeClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// pending returns the earliest pending timer's deadline.
func (c *fakeClock) pending() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for t := range c.timers {
		if first.IsZero() || t.at.Before(first) {
			first = t.at
		}
	}
	return first, !first.IsZero()
}

// next waits until a timer is pending and returns its deadline.
func (c *fakeClock) next(t *testing.T) time.Time {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if at, ok := c.pending(); ok {
			return at
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("timed out waiting for the dispatcher to arm a timer")
		}
	}
}

// advanceTo moves the clock to at and fires every timer due.
func (c *fakeClock) advanceTo(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
	}
	for t := range c.timers {
		if !t.at.After(c.now) {
			delete(c.timers, t)
			t.c <- c.now
		}
	}
	c.notify()
}

// fireNext waits for the next timer and fires it; it returns how far the clock moved.
func (c *fakeClock) fireNext(t *testing.T) time.Duration {
	t.Helper()
	at := c.next(t)
	moved := at.Sub(c.Now())
	c.advanceTo(at)
	return moved
}

// received is one request as the receiver saw it.
type received struct {
	URL    string
	Header http.Header
	Body   []byte
	Hook   pusher.Webhook
}

// names lists the event names of the request.
func (r received) names() []string {
	var out []string
	for _, e := range r.Hook.Events {
		out = append(out, e.Name+":"+e.Channel+userSuffix(e))
	}
	return out
}

func userSuffix(e pusher.WebhookEvent) string {
	if e.UserID == "" {
		return ""
	}
	return ":" + e.UserID
}

// receiver is an http.RoundTripper that records every request and answers with respond (200 when
// nil). respond gets the 1-based number of the request to that URL, the request and its body.
type receiver struct {
	t       *testing.T
	mu      sync.Mutex
	count   map[string]int
	respond func(n int, r *http.Request, body []byte) (int, error)
	discard bool // do not record (for tests that count through Stats)
	reqs    chan received
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, count: map[string]int{}, reqs: make(chan received, 10_000)}
}

func (rc *receiver) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	r := received{URL: req.URL.String(), Header: req.Header.Clone(), Body: body}
	if err := json.Unmarshal(body, &r.Hook); err != nil {
		rc.t.Errorf("webhook body is not JSON: %v: %s", err, body)
	}
	rc.mu.Lock()
	rc.count[r.URL]++
	n, respond, discard := rc.count[r.URL], rc.respond, rc.discard
	rc.mu.Unlock()
	if !discard {
		rc.reqs <- r
	}
	status := http.StatusOK
	if respond != nil {
		if status, err = respond(n, req, body); err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

func (rc *receiver) setRespond(f func(n int, r *http.Request, body []byte) (int, error)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

// holdFirst makes the receiver hold the first request to each URL containing match until release
// is called (at the latest when the test ends): that endpoint's later events wait in its queue.
func (rc *receiver) holdFirst(t *testing.T, match string) (release func()) {
	unblock := make(chan struct{})
	rc.setRespond(func(n int, r *http.Request, _ []byte) (int, error) {
		if n == 1 && strings.Contains(r.URL.String(), match) {
			<-unblock
		}
		return http.StatusOK, nil
	})
	var once sync.Once
	release = func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release) // before the harness's Shutdown, which would wait for the held request
	return release
}

// next returns the next request, failing the test if none comes within waitLimit.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.reqs:
		return r
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for a webhook request")
		return received{}
	}
}

// expect reads the next requests and checks their events, one string per request.
func (rc *receiver) expect(t *testing.T, want ...string) []received {
	t.Helper()
	var got []received
	for _, w := range want {
		r := rc.next(t)
		got = append(got, r)
		if g := strings.Join(r.names(), " "); g != w {
			t.Fatalf("request %d to %s = [%s], want [%s]", len(got), r.URL, g, w)
		}
	}
	return got
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a dispatcher on a fake clock and a recording transport.
type harness struct {
	d     *Dispatcher
	clock *fakeClock
	rc    *receiver
	logs  *syncBuffer
}

// start builds a dispatcher for one app (testAppID) with the given endpoints (one at
// http://hook.test/ when none) and shuts it down when the test ends.
func start(t *testing.T, cfg Config, endpoints ...Endpoint) *harness {
	t.Helper()
	h := &harness{clock: newFakeClock(), rc: newReceiver(t), logs: &syncBuffer{}}
	if len(endpoints) == 0 {
		endpoints = []Endpoint{{URL: "http://hook.test/"}}
	}
	if cfg.Apps == nil {
		cfg.Apps = []App{{ID: testAppID, Key: testKey, Secret: testSecret, Endpoints: endpoints}}
	}
	cfg.Clock = h.clock
	cfg.Client = &http.Client{Transport: h.rc}
	log := zerolog.New(h.logs).Level(zerolog.DebugLevel)
	cfg.Logger = &log
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return h
}

func (h *harness) emit(events ...pusher.WebhookEvent) {
	for _, e := range events {
		h.d.Emit(testAppID, e)
	}
}

// locked runs fn with the dispatcher's lock held: it sees the dispatcher between two of its steps,
// the timer armed for what they scheduled. Emit has done its work when it returns; locked is for
// the loop's handling of a worker's result or a timer whose effect the test has seen begin.
func (h *harness) locked(fn func()) {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	fn()
}

// settled returns once the step the dispatcher is in the middle of, if any, is done.
func (h *harness) settled() { h.locked(func() {}) }

// occupancy copies the debounce state.
func (h *harness) occupancy() map[occKey]occupancy {
	out := map[occKey]occupancy{}
	h.locked(func() {
		for k, s := range h.d.occupancy {
			out[k] = *s
		}
	})
	return out
}

// waitUntil polls cond (a counter or a state the dispatcher exposes no event for) until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func occupied(ch string) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: ch}
}

func vacated(ch string) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: ch}
}

func added(ch, user string) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: ch, UserID: user}
}

func removed(ch, user string) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: ch, UserID: user}
}

func clientEvent(ch, data string) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookClientEvent, Channel: ch, Event: "client-typing", Data: data, SocketID: "1.2"}
}

func count(ch string, n int) pusher.WebhookEvent {
	return pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: ch, SubscriptionCount: &n}
}
