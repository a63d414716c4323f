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
			c.sendError(pusher.Errorf("Message too large: at most %d bytes per frame", cfg.MaxFrameBytes))
		case m.Op == ws.OpBinary:
			c.sendError(pusher.Errorf("Binary frames are not supported: send JSON text frames"))
		case c.out.isClosing():
			// Terminated, shutting down or cut off: the client is only waited on for its close reply,
			// and nothing it sends meanwhile (a sign-in, a client event) takes effect.
		default:
			c.app.stats.messagesIn.Add(1)
			c.app.stats.bytesIn.Add(int64(len(m.Data)))
			c.handleFrame(m.Data)
		}
		if c.ws.ParkIfIdle(c.wake) {
			return
		}
	}
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
