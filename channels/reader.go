package channels

import (
	"errors"
	"sync/atomic"

	"github.com/herald-rt/herald/pusher"
)

// A connection's reader: it runs while the client has sent something and parks the connection when
// nothing more is buffered (see poller_linux.go), so no goroutine waits on an idle client.

// serve reads and handles what the client has sent; it is started when the poller sees bytes arrive.
// Once nothing more is buffered it parks the connection and returns, so an idle connection holds no
// goroutine and no buffer. Where parking is unavailable, it waits in the read instead.
func (c *Conn) serve() {
	hardLimit := 16 * c.srv.cfg.MaxFrameBytes
	for {
		m, err := c.ws.next(c.srv.cfg.MaxFrameBytes, hardLimit)
		if err != nil {
			c.finish(err)
			return
		}
		c.touch()
		switch {
		case m.op == opPing:
			c.sendFrame(outFrame{op: opPong, data: m.data}, true)
		case m.op == opPong:
			// Activity only; touch recorded it.
		case m.op == opClose:
			code, err := parseClose(m.data)
			if err == nil {
				err = closeReceived{code}
			}
			c.finish(err)
			return
		case m.tooBig:
			c.sendError(pusher.Errorf("Message too large: at most %d bytes per frame", c.srv.cfg.MaxFrameBytes))
		case m.op == opBinary:
			c.sendError(pusher.Errorf("Binary frames are not supported: send JSON text frames"))
		case c.isClosing():
			// Terminated, shutting down or cut off: the client is only waited on for its close reply,
			// and nothing it sends meanwhile (a sign-in, a client event) takes effect.
		default:
			c.handleFrame(m.data)
		}
		if c.parkIfIdle() {
			return
		}
	}
}

// maxIdleReaders bounds the reader goroutines kept waiting for a woken connection.
const maxIdleReaders = 8

var (
	idleReaders    = make(chan *Conn)
	idleReaderSize atomic.Int32
)

// startReader runs serve for a woken connection on an idle reader goroutine, whose stack has already
// grown to what handling a frame takes; only with none idle does a new goroutine start.
func startReader(c *Conn) {
	select {
	case idleReaders <- c:
	default:
		go readLoop(c)
	}
}

// readLoop serves connections handed over by startReader, staying idle between them unless
// maxIdleReaders already wait.
func readLoop(c *Conn) {
	for {
		c.serve()
		if idleReaderSize.Add(1) > maxIdleReaders {
			idleReaderSize.Add(-1)
			return
		}
		c = <-idleReaders
		idleReaderSize.Add(-1)
	}
}

// parkIfIdle parks the connection when nothing is buffered and reports whether it did; the caller must
// then return, since a new reader may start at any moment.
func (c *Conn) parkIfIdle() bool {
	if c.ws.pending() {
		return false
	}
	c.ws.release()
	return park(c)
}

// finish ends the reader for good. A client's close frame is answered with the same code and a broken
// framing rule with 1002 or 1009, after the frames already being written; the socket closes once
// that reply is out, then the connection leaves everything it joined.
func (c *Conn) finish(err error) {
	c.logEnd(err)
	var reply []byte
	var closed closeReceived
	var broken *protocolError
	switch {
	case errors.As(err, &closed):
		reply = []byte{}
		if closed.code != 0 {
			reply = closePayload(closed.code, "")
		}
	case errors.As(err, &broken):
		reply = closePayload(broken.code, broken.reason)
	}
	c.qmu.Lock()
	c.readDone = true
	if !c.closeSent {
		c.dropBacklog()
		c.closing = true
		if c.closeFrame == nil {
			c.closeFrame = reply
		}
		if c.closeFrame != nil {
			c.startWriter()
		}
	}
	lingering := c.writing
	c.qmu.Unlock()
	if !lingering {
		_ = c.ws.close()
	}
	c.cleanup()
}
