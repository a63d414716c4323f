package channels

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// fakeTransport stands in for a WebSocket where sockets are not the point: it records what the
// server writes and can hold writes back to play a slow client.
type fakeTransport struct {
	written chan []byte   // every frame written, in order
	gate    chan struct{} // when non-nil, each Write waits for a token (or its deadline)
	closed  chan websocket.StatusCode
	once    sync.Once
	done    chan struct{}
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{
		written: make(chan []byte, 4096),
		closed:  make(chan websocket.StatusCode, 1),
		done:    make(chan struct{}),
	}
}

func (f *fakeTransport) Reader(ctx context.Context) (websocket.MessageType, io.Reader, error) {
	<-f.done
	return 0, nil, errors.New("fake transport closed")
}

func (f *fakeTransport) Write(ctx context.Context, _ websocket.MessageType, p []byte) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return errors.New("fake transport closed")
		}
	}
	f.written <- p
	return nil
}

func (f *fakeTransport) Ping(context.Context) error { return nil }

func (f *fakeTransport) cork()         {}
func (f *fakeTransport) uncork() error { return nil }

func (f *fakeTransport) Close(code websocket.StatusCode, _ string) error {
	f.once.Do(func() { f.closed <- code; close(f.done) })
	return nil
}

func (f *fakeTransport) CloseNow() error { return f.Close(-1, "") }

const (
	testAppID  = "1"
	testKey    = "test-key"
	testSecret = "test-secret"
)

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Apps == nil {
		cfg.Apps = []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true, ClientEvents: true}}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestConn admits a connection on a fake transport, as serveWebSocket would after the upgrade.
func newTestConn(t *testing.T, s *Server) (*Conn, *fakeTransport) {
	t.Helper()
	ft := newFakeTransport()
	c := &Conn{srv: s, ws: ft, app: s.apps.byKey[testKey], done: make(chan struct{}), subs: map[string]*subscription{}}
	if perr := s.conns.register(c, 0); perr != nil {
		t.Fatal(perr)
	}
	c.idle = time.AfterFunc(time.Hour, func() {})
	t.Cleanup(func() {
		_ = ft.CloseNow()
		c.cleanup()
	})
	return c, ft
}

// next returns the next frame written to ft, failing the test after a bounded wait.
func next(t *testing.T, ft *fakeTransport) pusher.ClientFrame {
	t.Helper()
	select {
	case b := <-ft.written:
		var f pusher.ClientFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("server wrote invalid JSON %s", b)
		}
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a frame")
		return pusher.ClientFrame{}
	}
}

// expectNothing asserts no frame is pending: callers first make the server write a later frame and
// read it, so "nothing before it" is established without sleeping.
func expectNothing(t *testing.T, ft *fakeTransport) {
	t.Helper()
	select {
	case b := <-ft.written:
		t.Fatalf("unexpected frame %s", b)
	default:
	}
}

func subscribeFrame(t *testing.T, c *Conn, channel, channelData string) []byte {
	t.Helper()
	d := map[string]string{"channel": channel}
	if kind, _ := pusher.KindOf(channel); kind.NeedsSignature() {
		d["auth"] = auth.SignChannel(testKey, testSecret, c.id, channel, channelData)
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	b, _ := json.Marshal(map[string]any{"event": pusher.EventSubscribe, "data": d})
	return b
}

// subscribe subscribes c and consumes the subscription_succeeded frame, returning its data.
func subscribe(t *testing.T, c *Conn, ft *fakeTransport, channel, channelData string) string {
	t.Helper()
	c.handleFrame(subscribeFrame(t, c, channel, channelData))
	f := next(t, ft)
	if f.Event != pusher.EventSubscriptionSucceeded || f.Channel != channel {
		t.Fatalf("subscribe %s: got %s %s %s", channel, f.Event, f.Channel, f.Data)
	}
	data, _ := pusher.TextOf(f.Data)
	return data
}
