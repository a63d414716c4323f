package channels

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
	"time"
)

// connBufferSize sizes the bufio reader and writer coder/websocket keeps for a connection's whole life.
// net/http's hijacked buffers are 4 KiB each; Pusher frames are small, larger reads bypass the buffer,
// and writes are gathered by corkedConn, so a small buffer costs nothing but saves most of 8 KiB per
// idle connection. It must hold a whole control frame (at most 2+4+125 bytes) so that those reach the
// socket in one Write (see corkedConn).
const connBufferSize = 512

// hijacker hands coder/websocket a connection of Herald's making instead of net/http's: small buffers,
// and a corkedConn under the writer.
type hijacker struct {
	http.ResponseWriter
	writeTimeout time.Duration
	conn         *corkedConn // set by Hijack
}

// Hijack takes the connection from net/http and re-buffers it. Bytes net/http had already read past
// the upgrade request are moved into the new reader's buffer, where coder/websocket looks for them;
// if there are more than it holds (no Pusher client sends before the handshake answer), net/http's
// own reader is kept.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &corkedConn{Conn: nc, writeTimeout: h.writeTimeout}
	r := brw.Reader
	if n := r.Buffered(); n <= connBufferSize {
		pending, _ := r.Peek(n)
		r = bufio.NewReaderSize(multiReader(bytes.Clone(pending), h.conn), connBufferSize)
		_, _ = r.Peek(n) // load the pending bytes into the buffer without touching the socket
	}
	return h.conn, bufio.NewReadWriter(r, bufio.NewWriterSize(h.conn, connBufferSize)), nil
}

// multiReader reads pending first, then conn; unlike io.MultiReader it needs no slice per connection.
func multiReader(pending []byte, conn net.Conn) *prefixReader {
	return &prefixReader{pending: pending, conn: conn}
}

type prefixReader struct {
	pending []byte
	conn    net.Conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.conn.Read(b)
}

// corkedConn lets the writer gather a whole drained batch into one socket write. While corked, writes
// only append to a pooled buffer; uncork sends it. Idle connections hold no buffer.
//
// Frames never interleave: only the connection's writer goroutine writes data frames, always corked;
// other goroutines write only control frames (pong, ping, close), each of which reaches Write in one
// call (see connBufferSize); and every real socket write, direct or uncork, happens under mu. Every
// real write carries a deadline, which replaces a per-write context timer in coder/websocket.
type corkedConn struct {
	net.Conn
	writeTimeout time.Duration

	mu     sync.Mutex
	corked bool
	buf    *[]byte // the batch being gathered, while corked
}

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Write appends to the batch while corked, and otherwise writes through with a deadline.
func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.writeLocked(p)
}

func (c *corkedConn) writeLocked(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// cork starts gathering writes.
func (c *corkedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkBuffers.Get().(*[]byte)
	c.mu.Unlock()
}

// uncork sends what was gathered in one write and stops gathering.
func (c *corkedConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.buf
	c.corked, c.buf = false, nil
	_, err := c.writeLocked(*buf)
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		corkBuffers.Put(buf)
	}
	return err
}
