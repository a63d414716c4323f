package channels

import (
	"sync/atomic"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// A connection's reader: it runs while the client has sent something and parks the connection when
// nothing more is buffered, so no goroutine waits on an idle client.

// serve reads and handles what the client has sent. Once nothing more is buffered it parks the
// connection and returns, so an idle connection holds no goroutine and no buffer; the poller starts
// it again when bytes arrive. Where parking is unavailable, it waits in the read instead.
func (c *Conn) serve() {
	cfg := &c.srv.cfg
	hardLimit := 16 * cfg.MaxFrameBytes
	for {
		m, err := c.ws.Next(cfg.MaxFrameBytes, hardLimit)
		if err != nil {
			c.finish(err)
			return
		}
		c.touch()
		switch {
		case m.Op == ws.OpPing:
			c.out.send(ws.Frame{Op: ws.OpPong, Data: m.Data}, true)
		case m.Op == ws.OpPong:
			// Activity only; touch recorded it.
		case m.Op == ws.OpClose:
			code, err := ws.ParseClose(m.Data)
			if err == nil {
				err = ws.CloseReceived{Code: code}
			}
			c.finish(err)
			return
		case m.TooBig:
			c.sendError(c.srv.frameTooLarge())
		case m.Op == ws.OpBinary:
			c.sendError(pusher.Errorf("Binary frames are not supported: send JSON text frames"))
		default:
			c.receive(m.Data)
		}
		if c.ws.ParkIfIdle(c.wake) {
			return
		}
	}
}

// receive counts and handles one text frame from the client, whatever its transport. A connection
// being closed (terminated, shutting down or cut off) only waits for its client's close reply, and
// nothing the client sends meanwhile (a sign-in, a client event) takes effect.
func (c *Conn) receive(frame []byte) {
	if c.out.isClosing() {
		return
	}
	c.app.stats.messagesIn.Add(1)
	c.app.stats.bytesIn.Add(int64(len(frame)))
	c.handleFrame(frame)
}

// frameTooLarge is the error a frame over MaxFrameBytes gets; the connection is kept.
func (s *Server) frameTooLarge() *pusher.Error {
	return pusher.Errorf("Message too large: at most %d bytes per frame", s.cfg.MaxFrameBytes)
}

// wake starts the reader of a parked connection whose socket became readable or was closed.
func (c *Conn) wake() { c.srv.readers.start(c) }

// maxIdleReaders bounds the reader goroutines kept waiting for a woken connection.
const maxIdleReaders = 8

// readerPool runs woken connections' readers on goroutines whose stacks have already grown to what
// handling a frame takes; only with none idle does a new goroutine start.
type readerPool struct {
	idle chan *Conn
	size atomic.Int32 // goroutines waiting on idle
}

func newReaderPool() *readerPool { return &readerPool{idle: make(chan *Conn)} }

// start runs c's reader; it never blocks.
func (p *readerPool) start(c *Conn) {
	select {
	case p.idle <- c:
	default:
		go p.run(c)
	}
}

// run serves connections handed over by start, staying idle between them unless maxIdleReaders
// already wait.
func (p *readerPool) run(c *Conn) {
	for {
		c.serve()
		if p.size.Add(1) > maxIdleReaders {
			p.size.Add(-1)
			return
		}
		c = <-p.idle
		p.size.Add(-1)
	}
}
