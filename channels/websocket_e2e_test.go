package channels

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/channels/internal/wstest"
	"github.com/herald-rt/herald/pusher"
)

// rawClient speaks WebSocket byte by byte, so tests see exactly what Herald sends, and holds no
// goroutine of its own, so goroutine counts show the server's alone.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawRequest is the RFC 6455 §1.2 example request, whose accept key is known.
const rawRequest = "GET %s HTTP/1.1\r\nHost: herald\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"

func startRaw(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := newTestServer(t, cfg)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		hs.Close()
	})
	return s, strings.TrimPrefix(hs.URL, "http://")
}

// dialRaw performs the handshake with extra header lines and returns the response.
func dialRaw(t *testing.T, addr, path, extra string) (*rawClient, *http.Response) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write([]byte(strings.Replace(strings.Replace(rawRequest, "%s", path, 1), "%s", extra, 1))); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp
}

// connect dials /app/{key} and consumes pusher:connection_established, returning the socket id.
func connectRaw(t *testing.T, addr string) (*rawClient, string) {
	t.Helper()
	c, resp := dialRaw(t, addr, "/app/"+testKey+"?protocol=7", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	var data struct {
		SocketID string `json:"socket_id"`
	}
	f := c.event(pusher.EventConnectionEstablished)
	if s, _ := pusher.TextOf(f.Data); json.Unmarshal([]byte(s), &data) != nil || data.SocketID == "" {
		t.Fatalf("connection_established data %s", f.Data)
	}
	return c, data.SocketID
}

func (c *rawClient) send(fin bool, op byte, payload string) {
	c.t.Helper()
	if _, err := c.nc.Write(wstest.Frame(fin, op, []byte(payload))); err != nil {
		c.t.Fatal(err)
	}
}

// frame reads one server frame, which must be unmasked and unfragmented.
func (c *rawClient) frame() (byte, []byte) {
	c.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	if h[0]&0xF0 != 0x80 || h[1]&0x80 != 0 {
		c.t.Fatalf("frame header %#x %#x: want FIN, no reserved bits, unmasked", h[0], h[1])
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("reading a payload: %v", err)
	}
	return h[0] & 0x0F, p
}

// event reads the next frame, which must be a text frame holding event name.
func (c *rawClient) event(name string) pusher.ClientFrame {
	c.t.Helper()
	op, p := c.frame()
	var f pusher.ClientFrame
	if op != ws.OpText || json.Unmarshal(p, &f) != nil || f.Event != name {
		c.t.Fatalf("got op %d %s, want event %s", op, p, name)
	}
	return f
}

// closed reads the close frame, which must carry code, then expects the server to end the connection.
func (c *rawClient) closed(code int) {
	c.t.Helper()
	op, p := c.frame()
	if op != ws.OpClose || len(p) < 2 || int(binary.BigEndian.Uint16(p)) != code {
		c.t.Fatalf("got op %d %q, want close %d", op, p, code)
	}
	c.send(true, ws.OpClose, string(p[:2]))
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		c.t.Fatalf("after the close handshake: %v, want EOF", err)
	}
}

func TestHandshake(t *testing.T) {
	_, addr := startRaw(t, Config{})
	c, resp := dialRaw(t, addr, "/app/"+testKey, "Sec-WebSocket-Protocol: chat, pusher-channels-protocol-7\r\nSec-WebSocket-Extensions: permessage-deflate\r\n")
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		t.Fatalf("status %d", resp.StatusCode)
	case resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=": // RFC 6455 §1.3
		t.Errorf("accept key %q", resp.Header.Get("Sec-WebSocket-Accept"))
	case resp.Header.Get("Sec-WebSocket-Protocol") != "pusher-channels-protocol-7":
		t.Errorf("subprotocol %q, want the Pusher one offered", resp.Header.Get("Sec-WebSocket-Protocol"))
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		t.Errorf("extension %q agreed; Herald agrees none", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	c.event(pusher.EventConnectionEstablished)

	for name, tc := range map[string]struct {
		request string
		status  int
	}{
		"no key":     {strings.Replace(rawRequest, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1), http.StatusBadRequest},
		"version 8":  {strings.Replace(rawRequest, "Version: 13", "Version: 8", 1), http.StatusUpgradeRequired},
		"no upgrade": {strings.Replace(rawRequest, "Upgrade: websocket\r\n", "", 1), http.StatusUpgradeRequired},
		"POST":       {strings.Replace(rawRequest, "GET", "POST", 1), http.StatusMethodNotAllowed},
		"HTTP/1.0":   {strings.Replace(rawRequest, "HTTP/1.1", "HTTP/1.0", 1), http.StatusHTTPVersionNotSupported},
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		req := strings.Replace(strings.Replace(tc.request, "%s", "/app/"+testKey, 1), "%s", "", 1)
		_, _ = nc.Write([]byte(req))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != tc.status {
			t.Errorf("%s: status %v, %v; want %d", name, resp.StatusCode, err, tc.status)
		}
		_ = nc.Close()
	}
}

// TestControlFramesAndFragments: a client ping is answered with its payload even between the
// fragments of a message, and the reassembled message is handled.
func TestControlFramesAndFragments(t *testing.T) {
	_, addr := startRaw(t, Config{})
	c, _ := connectRaw(t, addr)
	c.send(false, ws.OpText, `{"event":"pus`)
	c.send(true, ws.OpPing, "are you there")
	c.send(true, ws.OpContinuation, `her:ping","data":{}}`)
	if op, p := c.frame(); op != ws.OpPong || string(p) != "are you there" {
		t.Fatalf("got op %d %q, want a pong with the ping's payload", op, p)
	}
	c.event(pusher.EventPong)
	c.send(true, ws.OpBinary, "\x00\x01")
	c.event(pusher.EventError)
	c.send(true, ws.OpClose, string(ws.ClosePayload(1000, "done")))
	if op, p := c.frame(); op != ws.OpClose || binary.BigEndian.Uint16(p) != 1000 {
		t.Fatalf("got op %d %q, want the close echoed with 1000", op, p)
	}
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close handshake: %v, want EOF", err)
	}
}

// TestInvalidUTF8ClosesWith1007 (RFC 6455 §8.1): a text message that is not UTF-8, whole or split
// across fragments, ends the connection with 1007 instead of being answered; so does a close frame
// whose reason is not UTF-8.
func TestInvalidUTF8ClosesWith1007(t *testing.T) {
	_, addr := startRaw(t, Config{})
	for name, frames := range map[string][][]byte{
		"text":      {wstest.Frame(true, ws.OpText, []byte("{\"event\":\"pusher:ping\",\"data\":\"\xff\"}"))},
		"fragments": {wstest.Frame(false, ws.OpText, []byte("{\"event\":\"\xc3")), wstest.Frame(true, ws.OpContinuation, []byte("\"}"))},
		"close":     {wstest.Frame(true, ws.OpClose, append(ws.ClosePayload(1000, ""), 0xff))},
	} {
		c, _ := connectRaw(t, addr)
		for _, f := range frames {
			if _, err := c.nc.Write(f); err != nil {
				t.Fatal(err)
			}
		}
		if op, p := c.frame(); op != ws.OpClose || binary.BigEndian.Uint16(p) != ws.CloseInvalidPayload {
			t.Errorf("%s: got op %d %q, want close 1007", name, op, p)
		}
	}
}

func TestBrokenFramingClosesWith1002(t *testing.T) {
	_, addr := startRaw(t, Config{})
	c, _ := connectRaw(t, addr)
	frame := wstest.Frame(true, ws.OpText, []byte(`{"event":"pusher:ping"}`))
	frame[1] &^= 0x80 // unmasked
	frame = append(frame[:2], frame[6:]...)
	// More bytes follow that the server will never read: closing with them unread would reset the
	// connection, and the client could lose the close frame.
	frame = append(frame, bytes.Repeat([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, 3000)...)
	if _, err := c.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	// After a protocol error the server closes without awaiting a reply (RFC 6455 §7.1.7).
	if op, p := c.frame(); op != ws.OpClose || binary.BigEndian.Uint16(p) != ws.CloseProtocolError {
		t.Fatalf("got op %d %q, want close 1002", op, p)
	}
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}
}

// TestEmbeddingServerTimeouts: an http.Server with read and write timeouts of its own (as an embedding
// application may set) does not end WebSocket connections when they pass.
func TestEmbeddingServerTimeouts(t *testing.T) {
	s := newTestServer(t, Config{})
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Config.ReadTimeout, hs.Config.WriteTimeout = 50*time.Millisecond, 50*time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)
	c, _ := connectRaw(t, strings.TrimPrefix(hs.URL, "http://"))
	time.Sleep(100 * time.Millisecond) // past both timeouts: elapsed time is the point
	c.send(true, ws.OpText, `{"event":"pusher:ping","data":{}}`)
	c.event(pusher.EventPong)
}

// TestWritesOutliveWriteTimeout: a connection older than WriteTimeout still receives what is sent to it
// (no deadline from the handshake or an earlier write may linger and fail later writes).
func TestWritesOutliveWriteTimeout(t *testing.T) {
	s, addr := startRaw(t, Config{WriteTimeout: 50 * time.Millisecond, MaxQueueBytes: 1 << 20})
	c, _ := connectRaw(t, addr)
	c.send(true, ws.OpText, `{"event":"pusher:subscribe","data":{"channel":"later"}}`)
	c.event(pusher.EventSubscriptionSucceeded)
	big := strings.Repeat("x", 1<<16) // past the socket buffer now and then: the writer goroutine's path
	for round := range 3 {
		time.Sleep(60 * time.Millisecond) // let every deadline set so far pass: elapsed time is the point
		s.publish(Message{AppID: testAppID, Channel: "later", Frame: pusher.EventFrame("small", "later", "hello", "")})
		s.publish(Message{AppID: testAppID, Channel: "later", Frame: pusher.EventFrame("big", "later", big, "")})
		c.event("small")
		if f := c.event("big"); len(f.Data) < len(big) {
			t.Fatalf("round %d: big event of %d bytes", round, len(f.Data))
		}
	}
}

// TestIdleConnectionsAreParked: idle connections hold no goroutine, still receive what is published,
// wake for what they send, and are closed cleanly by the server while parked.
func TestIdleConnectionsAreParked(t *testing.T) {
	if s0 := newTestServer(t, Config{}); s0.poller == nil {
		t.Skip("no epoll here: connections wait in their reads")
	}
	s, addr := startRaw(t, Config{})
	const n = 200
	base := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		c, _ := connectRaw(t, addr)
		c.send(true, ws.OpText, `{"event":"pusher:subscribe","data":{"channel":"idle"}}`)
		c.event(pusher.EventSubscriptionSucceeded)
		clients[i] = c
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+n/10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling a count: there is no event to await
	}
	if g := runtime.NumGoroutine(); g > base+n/10 {
		t.Fatalf("%d goroutines for %d idle connections (base %d), want them parked", g-base, n, base)
	}
	s.publish(Message{AppID: testAppID, Channel: "idle", Frame: pusher.EventFrame("news", "idle", "hello", "")})
	for _, c := range clients {
		c.event("news")
	}
	for _, c := range clients[:10] {
		c.send(true, ws.OpText, `{"event":"pusher:ping","data":{}}`)
		c.event(pusher.EventPong)
	}
	clients[0].nc.Close() // gone without a close frame: the poller sees it and the connection leaves
	for s.Connections() > n-1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Connections(); got != n-1 {
		t.Fatalf("%d connections after one client vanished, want %d", got, n-1)
	}
	// Shutdown closes 64 at a time, each awaiting its client's reply, so the clients answer in parallel.
	replies := make(chan error, n)
	for _, c := range clients[1:] {
		go func() { replies <- c.answerClose(pusher.CodeReconnect) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range n - 1 {
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
	}
}

// answerClose reads pusher:error and the close frame carrying code, answers it, and expects the server
// to end the connection. It reports rather than fails, for use off the test's goroutine.
func (c *rawClient) answerClose(code int) error {
	var h [2]byte
	for {
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return fmt.Errorf("awaiting close %d: %w", code, err)
		}
		p := make([]byte, h[1]&0x7F) // Herald's error and close frames are short
		if _, err := io.ReadFull(c.br, p); err != nil {
			return err
		}
		if h[0]&0x0F != ws.OpClose {
			continue
		}
		if len(p) < 2 || int(binary.BigEndian.Uint16(p)) != code {
			return fmt.Errorf("close payload %q, want code %d", p, code)
		}
		if _, err := c.nc.Write(wstest.Frame(true, ws.OpClose, p[:2])); err != nil {
			return err
		}
		if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("after the close handshake: %v, want EOF", err)
		}
		return nil
	}
}

// TestReconnectAtQuotaRightAfterClose: a connection stops counting against its app's quota before its
// close frame goes out, so a client that reconnects as soon as it reads the close (before answering
// it) is admitted, not refused with 4004.
func TestReconnectAtQuotaRightAfterClose(t *testing.T) {
	s, addr := startRaw(t, Config{Apps: []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true, MaxConnections: 1}}})
	first, _ := connectRaw(t, addr)
	conns := s.conns.snapshot()
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	conns[0].closeWith(pusher.CloseError(pusher.CodeReconnect, "Reconnect now"))
	first.event(pusher.EventError)
	if op, p := first.frame(); op != ws.OpClose || binary.BigEndian.Uint16(p) != pusher.CodeReconnect {
		t.Fatalf("got op %d %q, want close 4200", op, p)
	}
	connectRaw(t, addr) // fails the test unless connection_established arrives
}
