package channels

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// fakeSocket is the part of a fake transport that ends: its reader gets what the test puts in inbox
// until it is closed, and it never parks.
type fakeSocket struct {
	done  chan struct{}
	once  sync.Once
	inbox chan ws.Message
}

func newFakeSocket() fakeSocket {
	return fakeSocket{done: make(chan struct{}), inbox: make(chan ws.Message, 16)}
}

func (f *fakeSocket) Next(int, int) (ws.Message, error) {
	select {
	case m := <-f.inbox:
		return m, nil
	case <-f.done:
		return ws.Message{}, net.ErrClosed
	}
}

func (f *fakeSocket) ParkIfIdle(func()) bool    { return false }
func (f *fakeSocket) LingerClose(time.Duration) { _ = f.Close() }

func (f *fakeSocket) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

// fakeTransport stands in for a WebSocket where sockets are not the point: it records what the
// server writes and can hold writes back to play a slow client.
type fakeTransport struct {
	fakeSocket
	written chan []byte   // every text frame written, in order
	gate    chan struct{} // when non-nil, each frame waits for a token
	closed  chan int      // the code of the close frame written
	held    []ws.Frame    // frames a gated TryWrite did not take, written first by the next Write
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{
		fakeSocket: newFakeSocket(),
		written:    make(chan []byte, 4096),
		closed:     make(chan int, 1),
	}
}

func (f *fakeTransport) Write(frames ...ws.Frame) error {
	frames, f.held = append(f.held, frames...), nil
	for _, fr := range frames {
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-f.done:
				return net.ErrClosed
			}
		}
		switch fr.Op {
		case ws.OpText:
			f.written <- fr.Data
		case ws.OpClose:
			f.closed <- int(binary.BigEndian.Uint16(fr.Data))
		}
	}
	return nil
}

// TryWrite takes the frame at once unless the transport is gated, when it keeps all of it for the
// next Write.
func (f *fakeTransport) TryWrite(fr ws.Frame) (bool, error) {
	if f.gate != nil {
		f.held = append(f.held, fr)
		return false, nil
	}
	return true, f.Write(fr)
}

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
	c := newConn(s, ft)
	c.app = s.apps.Load().byKey[testKey]
	if perr := s.conns.register(c, 0); perr != nil {
		t.Fatal(perr)
	}
	c.out.wrote(true, nil) // no handshake to wait for
	t.Cleanup(func() {
		_ = ft.Close()
		if !c.cleaned.Load() { // unless a test ran the reader to its end
			c.unregister()
			c.cleanup()
		}
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
