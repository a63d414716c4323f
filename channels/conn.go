package channels

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/pusher"
)

// Conn is one client connection. Its read loop runs in the HTTP handler's goroutine and owns the
// subscriptions; a writer goroutine exists only while frames are queued, so an idle connection costs
// one goroutine, not two.
type Conn struct {
	// Static after admission.
	srv *Server
	app *app
	ws  transport
	id  string

	// Owned by the read loop.
	subs map[string]*subscription
	rate rateWindow
	user *pusher.UserData // set by a successful pusher:signin

	// authorized is set once the socket signs in or subscribes to a private or presence channel; the
	// authorization timer (apps with AuthorizationTimeout) closes the socket unless it is.
	authorized atomic.Bool
	authTimer  *time.Timer

	// The send queue, guarded by qmu. The byte bound applies to queued (bytes waiting in queue) plus
	// inflight (bytes of the batch the writer holds): the true backlog of the client.
	qmu      sync.Mutex
	queue    [][]byte
	spare    [][]byte
	queued   int
	inflight int
	writing  bool          // a writer goroutine is running
	closing  bool          // no further frame is accepted
	closeErr *pusher.Error // when set, the writer closes with it once the queue is drained

	lastActive atomic.Int64 // monotonic nanoseconds of the last inbound frame, Ping or Pong
	idle       *time.Timer  // liveness check, see liveness.go
	done       chan struct{}
}

// logger returns the connection's child logger. It is built on demand, since a connection logs rarely
// and a stored logger would cost every idle connection its bytes.
// transport is what a connection needs of its WebSocket: *websocket.Conn plus the cork of the
// connection under it (wsTransport). Tests substitute a fake where sockets are not the point.
type transport interface {
	Reader(ctx context.Context) (websocket.MessageType, io.Reader, error)
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
	CloseNow() error
	// cork gathers the following writes until uncork sends them in one socket write.
	cork()
	uncork() error
}

// wsTransport is the real transport: a coder/websocket connection over a corkedConn.
type wsTransport struct {
	*websocket.Conn
	out *corkedConn
}

func (t wsTransport) cork()         { t.out.cork() }
func (t wsTransport) uncork() error { return t.out.uncork() }

// logger returns the connection's child logger. It is built on demand: a connection logs rarely, and
// a stored logger would cost every idle connection its bytes.
func (c *Conn) logger() *zerolog.Logger {
	l := c.srv.log.With().Str("app_id", c.app.ID).Str("socket_id", c.id).Logger()
	return &l
}

// run is the read loop: one frame at a time, one handler per event. It returns when the connection
// ends, after leaving every channel.
func (c *Conn) run() {
	defer c.cleanup()
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			c.logEnd(err)
			return
		}
		c.touch()
		if typ != websocket.MessageText {
			c.discard(r)
			c.sendError(pusher.Errorf("Binary frames are not supported: send JSON text frames"))
			continue
		}
		frame, tooBig, err := readFrame(r, c.srv.frames.get(), c.srv.cfg.MaxFrameBytes)
		switch {
		case err != nil:
			c.srv.frames.put(frame)
			c.logEnd(err)
			return
		case tooBig:
			c.sendError(pusher.Errorf("Message too large: at most %d bytes per frame", c.srv.cfg.MaxFrameBytes))
		default:
			c.handleFrame(frame)
		}
		c.srv.frames.put(frame)
	}
}

// readFrame reads one message into buf. A message over limit is drained and reported as tooBig, so an
// oversized frame costs the sender an error, not the connection.
func readFrame(r io.Reader, buf []byte, limit int) (frame []byte, tooBig bool, err error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				_, err = io.Copy(io.Discard, r)
				return buf[:0], true, err
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if len(buf) > limit {
				return buf[:0], true, nil
			}
			return buf, false, nil
		}
		if err != nil {
			return buf[:0], false, err
		}
	}
}

func (c *Conn) discard(r io.Reader) { _, _ = io.Copy(io.Discard, r) }

// cleanup runs once when the read loop ends: stop the timers, drop the backlog, leave every channel
// (presence members and vacated hooks included) and free the socket id.
func (c *Conn) cleanup() {
	c.idle.Stop()
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	c.qmu.Lock()
	c.closing = true
	c.queue, c.spare, c.queued, c.closeErr = nil, nil, 0, nil
	c.qmu.Unlock()
	for _, sub := range c.subs {
		c.leave(sub)
	}
	c.signout()
	c.srv.conns.unregister(c)
	_ = c.ws.CloseNow()
	close(c.done)
}

func (c *Conn) logEnd(err error) {
	if status := websocket.CloseStatus(err); status != -1 || errors.Is(err, io.EOF) {
		return
	}
	if c.srv.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Err(err).Msg("connection ended")
	}
}

// send queues a frame for the writer and never blocks. It reports false when the frame was not
// queued: the connection is closing, or the backlog would pass MaxQueueBytes, in which case the client
// is cut off with 4100 — a slow consumer must not grow memory or hold up the publisher.
func (c *Conn) send(frame []byte) bool {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return false
	}
	if c.queued+c.inflight+len(frame) > c.srv.cfg.MaxQueueBytes {
		c.startClose(pusher.CloseError(pusher.CodeOverCapacity, "Client too slow: messages were dropped"), true)
		c.qmu.Unlock()
		c.srv.stats.SlowConsumers.Add(1) // once: the connection is closing from now on
		c.logger().Warn().Int("max_queue_bytes", c.srv.cfg.MaxQueueBytes).Msg("slow consumer disconnected")
		return false
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.startWriter()
	c.qmu.Unlock()
	return true
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

// startClose stops accepting frames and has the writer send e and close. dropBacklog discards queued
// frames first (a slow consumer's backlog is what must go). Called with qmu held.
func (c *Conn) startClose(e *pusher.Error, dropBacklog bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.closeErr = e
	if dropBacklog {
		clear(c.queue)
		c.queue, c.queued = c.queue[:0], 0
	}
	frame := pusher.ErrorFrame(e)
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.startWriter()
}

// startWriter starts the writer unless one runs. Called with qmu held.
func (c *Conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop drains the queue, then exits; with nothing queued a connection has no writer goroutine.
// After a close was requested it sends the close frame once the queue is empty.
func (c *Conn) writeLoop() {
	for {
		c.qmu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			closeErr := c.closeErr
			if closeErr == nil || !c.closing {
				c.writing = false
				c.qmu.Unlock()
				return
			}
			c.closeErr = nil // close once; writing stays true so no writer starts again
			c.qmu.Unlock()
			_ = c.ws.Close(websocket.StatusCode(closeErr.Code), closeReason(closeErr.Message))
			return
		}
		c.queue = c.spare[:0]
		c.spare = nil
		c.inflight, c.queued = c.queued, 0
		c.qmu.Unlock()

		err := c.writeBatch(batch)

		c.qmu.Lock()
		c.inflight = 0
		clear(batch)
		if cap(batch) <= 64 {
			c.spare = batch[:0]
		}
		if err != nil {
			c.closing = true
			c.closeErr = nil
			clear(c.queue)
			c.queue, c.queued = nil, 0
			c.writing = false
			c.qmu.Unlock()
			_ = c.ws.CloseNow()
			return
		}
		c.qmu.Unlock()
	}
}

// writeBatch writes frames in order with one socket write: the frames are gathered under the cork,
// and the deadline of that one write (WriteTimeout) bounds the whole batch.
func (c *Conn) writeBatch(batch [][]byte) error {
	c.ws.cork()
	for _, f := range batch {
		if err := c.ws.Write(context.Background(), websocket.MessageText, f); err != nil {
			_ = c.ws.uncork()
			return err
		}
	}
	return c.ws.uncork()
}

// closeReason fits a message into a close frame's reason (at most 123 bytes).
func closeReason(msg string) string {
	if len(msg) <= 123 {
		return msg
	}
	return msg[:123]
}
