package channels

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// TestSlowConsumerIsCutOff: a client that stops reading is disconnected with 4100 once its backlog
// passes MaxQueueBytes, its backlog is freed, and a healthy subscriber of the same channel misses nothing.
func TestSlowConsumerIsCutOff(t *testing.T) {
	s := newTestServer(t, Config{MaxQueueBytes: 4096})
	slow, slowFT := newTestConn(t, s)
	fast, fastFT := newTestConn(t, s)
	subscribe(t, slow, slowFT, "news", "")
	subscribe(t, fast, fastFT, "news", "")
	slowFT.gate = make(chan struct{}) // from now on the slow client accepts nothing

	frame := pusher.EventFrame("tick", "news", strings.Repeat("x", 500), "")
	const events = 50 // 50 × ~540 bytes: well past 4 KiB
	for i := range events {
		s.publish(Message{AppID: testAppID, Channel: "news", Frame: frame})
		if f := next(t, fastFT); f.Event != "tick" {
			t.Fatalf("fast subscriber event %d = %s", i, f.Event)
		}
	}
	if got := s.stats.SlowConsumers.Load(); got != 1 {
		t.Errorf("SlowConsumers = %d, want 1", got)
	}
	if slow.send([]byte("{}")) {
		t.Error("a cut-off connection still accepts frames")
	}
	close(slowFT.gate) // let the writer finish: it must send pusher:error 4100, then close 4100
	var sawError bool
	for !sawError {
		f := next(t, slowFT)
		sawError = f.Event == pusher.EventError && strings.Contains(string(f.Data), "4100")
	}
	if code := <-slowFT.closed; code != pusher.CodeOverCapacity {
		t.Errorf("slow client closed with %d, want 4100", code)
	}
	if backlog := slow.out.backlog(); backlog > 4096 {
		t.Errorf("backlog after cut-off = %d bytes, want within the bound", backlog)
	}
}

// TestWriterDrainsInOrderThenStops: frames arrive in order and, once drained, no writer goroutine
// remains for an idle connection.
func TestWriterDrainsInOrderThenStops(t *testing.T) {
	s := newTestServer(t, Config{})
	c, ft := newTestConn(t, s)
	for i := range 100 {
		c.send(pusher.EventFrame("e", "", strconv.Itoa(i), ""))
	}
	for i := range 100 {
		f := next(t, ft)
		if got, _ := pusher.TextOf(f.Data); got != strconv.Itoa(i) {
			t.Fatalf("frame %d has data %s", i, got)
		}
	}
	// The writer marks the queue idle before exiting; wait for that without sleeping blindly.
	for range 1000 {
		if c.out.idle() {
			return
		}
		runtime.Gosched()
	}
	t.Error("writer still running after the queue drained")
}

// TestEmptyFramesCountAgainstTheQueue: a client that sends empty pings and reads nothing is cut off
// like any slow consumer; its pongs, empty as they are, cannot queue without bound.
func TestEmptyFramesCountAgainstTheQueue(t *testing.T) {
	s := newTestServer(t, Config{MaxQueueBytes: 4096})
	c, ft := newTestConn(t, s)
	ft.gate = make(chan struct{}) // reads nothing
	accepted := 0
	for range 10000 {
		if !c.out.send(ws.Frame{Op: ws.OpPong}, true) {
			break
		}
		accepted++
	}
	if accepted > 4096/ws.FrameOverhead || s.stats.SlowConsumers.Load() != 1 {
		t.Fatalf("%d empty frames queued, %d slow consumers; want the client cut off within the bound", accepted, s.stats.SlowConsumers.Load())
	}
}

func TestCloseWithSendsErrorThenCloses(t *testing.T) {
	s := newTestServer(t, Config{})
	c, ft := newTestConn(t, s)
	c.send([]byte(`{"event":"before","data":"{}"}`))
	c.closeWith(pusher.CloseError(pusher.CodeReconnect, "bye"))
	if f := next(t, ft); f.Event != "before" {
		t.Fatalf("first frame %s, want the one queued before the close", f.Event)
	}
	if f := next(t, ft); f.Event != pusher.EventError {
		t.Fatalf("second frame %s, want pusher:error", f.Event)
	}
	if code := <-ft.closed; code != 4200 {
		t.Errorf("closed with %d, want 4200", code)
	}
	c.closeWith(pusher.CloseError(pusher.CodeReconnect, "again")) // idempotent, no panic
}

func TestRateWindow(t *testing.T) {
	var w rateLimits
	now := int64(5e9)
	for i := range 10 {
		if !w.allowEvent(now+int64(i), 10) {
			t.Fatalf("event %d refused", i+1)
		}
	}
	if w.allowEvent(now+100, 10) {
		t.Error("11th event in the same second allowed")
	}
	if !w.allowEvent(now+1e9, 10) {
		t.Error("event in the next second refused")
	}
}

// TestPendingSubscriptionGetsItsSnapshotFirst: frames fanned out to a subscription whose snapshot is
// still being read wait, and follow the snapshot in order, less what the snapshot already reflects.
func TestPendingSubscriptionGetsItsSnapshotFirst(t *testing.T) {
	s := newTestServer(t, Config{MaxQueueBytes: 4096})
	c, ft := newTestConn(t, s)
	k := channelKey{testAppID, "cache-room"}
	sub := s.hub.add(k, c, pusher.Member{}, true, nil)
	s.hub.fanout(&Message{AppID: testAppID, Channel: k.name, Frame: []byte(`{"event":"older","data":"{}"}`), Cached: 1})
	s.hub.fanout(&Message{AppID: testAppID, Channel: k.name, Frame: []byte(`{"event":"live","data":"{}"}`), Cached: 3})
	s.hub.fanout(&Message{AppID: testAppID, Channel: k.name, Frame: []byte(`{"event":"plain","data":"{}"}`)})
	expectNothing(t, ft)
	s.hub.activate(sub, [][]byte{[]byte(`{"event":"snapshot","data":"{}"}`)}, 0, 2)
	for _, want := range []string{"snapshot", "live", "plain"} {
		if f := next(t, ft); f.Event != want {
			t.Fatalf("got %s, want %s", f.Event, want)
		}
	}

	// What waits counts against the bound: past it the connection is cut off, with nothing counted.
	sub2 := s.hub.add(channelKey{testAppID, "cache-big"}, c, pusher.Member{}, true, nil)
	big := make([]byte, 3000)
	for range 2 {
		s.hub.fanout(&Message{AppID: testAppID, Channel: "cache-big", Frame: big})
	}
	s.hub.activate(sub2, [][]byte{[]byte(`{"event":"snapshot","data":"{}"}`)}, 0, 0)
	expectClosedWithNothingCounted(t, c, ft, pusher.CodeOverCapacity)
}

// TestPendingFramesAreDroppedWhenTheConnectionCloses: a subscription activated after its connection
// began closing sends nothing.
func TestPendingFramesAreDroppedWhenTheConnectionCloses(t *testing.T) {
	s := newTestServer(t, Config{})
	c, ft := newTestConn(t, s)
	sub := s.hub.add(channelKey{testAppID, "cache-x"}, c, pusher.Member{}, true, nil)
	s.hub.fanout(&Message{AppID: testAppID, Channel: "cache-x", Frame: []byte(`{"event":"live","data":"{}"}`)})
	c.closeWith(pusher.CloseError(pusher.CodeReconnect, "bye"))
	s.hub.activate(sub, [][]byte{[]byte(`{"event":"snapshot","data":"{}"}`)}, 0, 0)
	expectClosedWithNothingCounted(t, c, ft, pusher.CodeReconnect)
}

// expectClosedWithNothingCounted checks that a closing connection writes only its pusher:error and
// close frame, and leaves nothing counted against MaxQueueBytes.
func expectClosedWithNothingCounted(t *testing.T, c *Conn, ft *fakeTransport, code int) {
	t.Helper()
	if f := next(t, ft); f.Event != pusher.EventError {
		t.Fatalf("got %s, want only pusher:error", f.Event)
	}
	select {
	case got := <-ft.closed:
		if got != code {
			t.Errorf("closed with %d, want %d", got, code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no close frame")
	}
	// The writer uncounts its batch once the write that carried the close frame returns.
	for deadline := time.Now().Add(5 * time.Second); c.out.backlog() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted after the close dropped the held frames", c.out.backlog())
		}
	}
}

// recordedHooks keeps the names of the lifecycle events a server emits.
type recordedHooks struct {
	mu     sync.Mutex
	events []string
}

func (h *recordedHooks) Emit(_ string, e pusher.WebhookEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e.Name+" "+e.Channel)
}

// TestClosingConnectionActsOnNothing: once a connection is being closed (terminated, shut down, cut
// off), what the client sends before its close reply takes no effect.
func TestClosingConnectionActsOnNothing(t *testing.T) {
	hooks := &recordedHooks{}
	s := newTestServer(t, Config{Hooks: hooks})
	c, ft := newTestConn(t, s)
	c.closeWith(pusher.CloseError(pusher.CodeUnauthorized, "Connection terminated by the application"))
	ft.inbox <- ws.Message{Op: ws.OpText, Data: []byte(`{"event":"pusher:subscribe","data":{"channel":"after"}}`)}
	ft.inbox <- ws.Message{Op: ws.OpClose, Data: ws.ClosePayload(pusher.CodeUnauthorized, "")}
	c.serve() // returns on the close reply
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.events) != 0 {
		t.Errorf("a subscribe after the close took effect: %v", hooks.events)
	}
}

func TestTokenBucket(t *testing.T) {
	var b rateLimits
	now := int64(5e9)
	for i := range 20 { // a burst of ten times the rate
		if !b.allowSubscribe(now, 2) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if b.allowSubscribe(now, 2) {
		t.Error("request past the burst allowed")
	}
	if !b.allowSubscribe(now+5e8, 2) || b.allowSubscribe(now+5e8, 2) {
		t.Error("after half a second at 2/s, want exactly one more request")
	}
}

// TestSubscribeRateLimit: past its burst a connection's subscribes are refused with pusher:error 4303
// and a LimitReached subscription_error (status 429), counted, and the connection kept.
func TestSubscribeRateLimit(t *testing.T) {
	s := newTestServer(t, Config{Apps: []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true,
		Limits: pusher.Limits{SubscriptionsPerSecond: 1}}}})
	c, ft := newTestConn(t, s)
	for i := range 10 {
		subscribe(t, c, ft, "burst-"+strconv.Itoa(i), "")
	}
	c.handleFrame(subscribeFrame(t, c, "one-too-many", ""))
	if f := next(t, ft); f.Event != pusher.EventError || !strings.Contains(string(f.Data), "4303") {
		t.Fatalf("got %s %s, want pusher:error 4303", f.Event, f.Data)
	}
	if f := next(t, ft); f.Event != pusher.EventSubscriptionError || !strings.Contains(string(f.Data), `\"status\":429`) {
		t.Fatalf("got %s %s, want subscription_error with status 429", f.Event, f.Data)
	}
	if s.stats.SubscribesRefused.Load() != 1 || c.subs.get("one-too-many") != nil {
		t.Errorf("refused %d, subscribed %v", s.stats.SubscribesRefused.Load(), c.subs.get("one-too-many") != nil)
	}
	c.handleFrame([]byte(`{"event":"pusher:ping","data":{}}`))
	if f := next(t, ft); f.Event != pusher.EventPong {
		t.Errorf("got %s, want the connection kept", f.Event)
	}
}
