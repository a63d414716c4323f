package channels

import (
	"slices"

	"github.com/herald-rt/herald/pusher"
)

// A connection's writer: frames are written at once when nothing is queued, or queued up to
// MaxQueueBytes for a writer goroutine that exists only while there is a backlog.

// send sends a text frame and never blocks; see sendFrame.
func (c *Conn) send(frame []byte) bool { return c.sendFrame(outFrame{op: opText, data: frame}, true) }

// sendFrame sends a frame and never blocks: with nothing queued and direct set it writes at once as far
// as the socket takes it, and otherwise it queues the frame for the writer goroutine. It reports false
// when the frame was not taken: the connection is closing, or the backlog would pass MaxQueueBytes, in
// which case the client is cut off with 4100 — a slow consumer must not grow memory or hold up the
// publisher.
func (c *Conn) sendFrame(f outFrame, direct bool) bool {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return false
	}
	if c.queued+c.inflight+f.cost() > c.srv.cfg.MaxQueueBytes {
		c.startClose(pusher.CloseError(pusher.CodeOverCapacity, "Client too slow: messages were dropped"), true)
		c.qmu.Unlock()
		c.srv.stats.SlowConsumers.Add(1) // once: the connection is closing from now on
		c.logger().Warn().Int("max_queue_bytes", c.srv.cfg.MaxQueueBytes).Msg("slow consumer disconnected")
		return false
	}
	if c.held != nil {
		*c.held = append(*c.held, f)
		c.queued += f.cost()
		c.qmu.Unlock()
		return true
	}
	if c.writing || len(c.queue) > 0 || !direct {
		c.queue = append(c.queue, f)
		c.queued += f.cost()
		c.startWriter()
		c.qmu.Unlock()
		return true
	}
	// Nothing is being written: write at once, as far as the socket takes it without waiting. Frames
	// sent meanwhile queue behind this one (writing is set), and the rest goes to a writer goroutine.
	c.writing = true
	c.inflight = f.cost()
	c.qmu.Unlock()
	rest, err := c.ws.tryWrite(f)
	c.qmu.Lock()
	c.inflight = 0
	c.wroteDirectly(rest, err)
	return true
}

// wroteDirectly ends a write made outside the writer goroutine (with writing set, so that frames sent
// meanwhile queued): rest, the framed bytes the socket did not take, goes first, and a writer starts if
// anything is left to write, close or hang up. Called with qmu held, which it releases.
func (c *Conn) wroteDirectly(rest []byte, err error) {
	if err != nil {
		c.writeFailed()
		return
	}
	if rest != nil {
		f := outFrame{op: opRaw, data: rest}
		c.queue = slices.Insert(c.queue, 0, f)
		c.queued += f.cost()
	}
	if len(c.queue) > 0 || c.closeFrame != nil || c.readDone {
		go c.writeLoop() // writing stays set: the writer drains, closes or hangs up
	} else {
		c.writing = false
	}
	c.qmu.Unlock()
}

// writeFailed gives up on a socket that failed a write: nothing more is queued or sent. Called with
// qmu held, which it releases.
func (c *Conn) writeFailed() {
	c.closing = true
	c.dropBacklog()
	c.writing = false
	c.qmu.Unlock()
	c.hangUp()
}

// isClosing reports that the connection accepts no further frame: it is on its way out.
func (c *Conn) isClosing() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.closing
}

// sendError reports a protocol error to the client, closing the connection when its code says so.
func (c *Conn) sendError(e *pusher.Error) {
	if e.Closes() {
		c.closeWith(e)
		return
	}
	c.send(pusher.ErrorFrame(e))
}

// closeWith sends pusher:error e after what is already queued, then closes with e's code.
func (c *Conn) closeWith(e *pusher.Error) {
	c.qmu.Lock()
	c.startClose(e, false)
	c.qmu.Unlock()
}

// startClose stops accepting frames and has the writer send e, then the close frame. dropBacklog
// discards queued frames first (a slow consumer's backlog is what must go). Called with qmu held.
func (c *Conn) startClose(e *pusher.Error, dropBacklog bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.closeFrame = closePayload(e.Code, e.Message)
	if dropBacklog {
		c.dropBacklog()
	}
	f := outFrame{op: opText, data: pusher.ErrorFrame(e)}
	c.queue = append(c.queue, f)
	c.queued += f.cost()
	c.startWriter()
}

// dropBacklog discards the queued and held frames. Called with qmu held.
func (c *Conn) dropBacklog() {
	clear(c.queue)
	c.queue, c.queued = c.queue[:0], 0
	if c.held != nil {
		*c.held = (*c.held)[:0]
	}
}

// holdSends makes the frames sent from now on wait, in order, until releaseSends puts a frame ahead of
// them. A snapshot computed while its live updates may already be flowing (the watchlist) goes out
// first that way, and every update that follows it is one it may not reflect. Held frames count
// against MaxQueueBytes. Only the reader holds, and it releases before handling its next frame.
func (c *Conn) holdSends() {
	c.qmu.Lock()
	c.held = new([]outFrame)
	c.qmu.Unlock()
}

// releaseSends sends first (when not nil) and then the frames held since holdSends.
func (c *Conn) releaseSends(first []byte) {
	c.qmu.Lock()
	held := *c.held
	c.held = nil
	if c.closing { // they will never be written
		for _, f := range held {
			c.queued -= f.cost()
		}
		c.qmu.Unlock()
		return
	}
	if first != nil {
		f := outFrame{op: opText, data: first}
		c.queue = append(c.queue, f)
		c.queued += f.cost()
	}
	c.queue = append(c.queue, held...)
	if len(c.queue) > 0 {
		c.startWriter()
	}
	c.qmu.Unlock()
}

// startWriter starts the writer unless one runs. Called with qmu held.
func (c *Conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop drains the queue in batches, one socket write each, then exits: with nothing queued a
// connection has no writer goroutine. Once a close was requested and the queue is drained, the close
// frame goes out with the last batch; the socket then waits for the client's reply for closeGrace, or,
// when the reader has already stopped, lingers that long for the client to read it (see lingerClose).
func (c *Conn) writeLoop() {
	for {
		c.qmu.Lock()
		batch := c.queue
		closing := c.closeFrame != nil && !c.closeSent
		if closing {
			batch = append(batch, outFrame{op: opClose, data: c.closeFrame})
			c.closeSent = true
		}
		if len(batch) == 0 {
			c.writing = false
			hangUp := c.readDone
			c.qmu.Unlock()
			if hangUp {
				c.hangUp()
			}
			return
		}
		c.queue = c.spare[:0]
		c.spare = nil
		c.inflight, c.queued = c.queued, 0
		c.qmu.Unlock()

		err := c.ws.write(batch)

		c.qmu.Lock()
		c.inflight = 0
		clear(batch)
		if cap(batch) <= 64 {
			c.spare = batch[:0]
		}
		if err != nil {
			c.writeFailed()
			return
		}
		if closing {
			c.dropBacklog()
			c.writing = false
			if c.readDone { // nothing reads the reply: end the connection after the close frame
				c.qmu.Unlock()
				c.ws.lingerClose(closeGrace)
				return
			}
			c.idle.Reset(closeGrace) // under qmu, so that checkIdle cannot re-arm it for longer
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
	}
}
