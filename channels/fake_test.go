package channels

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// fakeSocket is the part of a fake transport that ends: its reader gets what the test puts in inbox
// until it is closed, and it never parks.
type fakeSocket struct {
	done  chan struct{}
	once  sync.Once
	inbox chan message
}

func newFakeSocket() fakeSocket {
	return fakeSocket{done: make(chan struct{}), inbox: make(chan message, 16)}
}

func (f *fakeSocket) next(int, int) (message, error) {
	select {
	case m := <-f.inbox:
		return m, nil
	case <-f.done:
		return message{}, net.ErrClosed
	}
}

func (f *fakeSocket) pending() bool { return false }
func (f *fakeSocket) release()      {}
func (f *fakeSocket) pollFD() int   { return -1 }

func (f *fakeSocket) watch(func(int)) bool      { return false }
func (f *fakeSocket) lingerClose(time.Duration) { _ = f.close() }

func (f *fakeSocket) close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

func (f *fakeSocket) isClosed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// fakeTransport stands in for a WebSocket where sockets are not the point: it records what the
// server writes and can hold writes back to play a slow client.
type fakeTransport struct {
	fakeSocket
	written chan []byte   // every text frame written, in order
	gate    chan struct{} // when non-nil, each frame waits for a token
	closed  chan int      // the code of the close frame written
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{
		fakeSocket: newFakeSocket(),
		written:    make(chan []byte, 4096),
		closed:     make(chan int, 1),
	}
}

func (f *fakeTransport) write(frames []outFrame) error {
	for _, fr := range frames {
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-f.done:
				return net.ErrClosed
			}
		}
		if fr.op == opRaw { // the framed rest of a tryWrite: one whole frame here
			fr = unframe(fr.data)
		}
		switch fr.op {
		case opText:
			f.written <- fr.data
		case opClose:
			f.closed <- int(binary.BigEndian.Uint16(fr.data))
		}
	}
	return nil
}

// unframe decodes one whole unmasked server frame.
func unframe(b []byte) outFrame {
	header := 2
	switch b[1] & 0x7F {
	case 126:
		header = 4
	case 127:
		header = 10
	}
	return outFrame{op: b[0] & 0x0F, data: b[header:]}
}

// tryWrite takes the frame at once unless the transport is gated, when it hands all of it back.
func (f *fakeTransport) tryWrite(fr outFrame) ([]byte, error) {
	if f.gate != nil {
		return appendFrame(nil, fr.op, fr.data), nil
	}
	return nil, f.write([]outFrame{fr})
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
	c := &Conn{srv: s, ws: ft, app: s.apps.byKey[testKey], done: make(chan struct{}), subs: map[string]*subscription{}}
	if perr := s.conns.register(c, 0); perr != nil {
		t.Fatal(perr)
	}
	c.idle = time.AfterFunc(time.Hour, func() {})
	t.Cleanup(func() {
		_ = ft.close()
		select {
		case <-c.done: // a test ran the reader to its end
		default:
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
