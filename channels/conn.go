package channels

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// Conn is one client connection: the Pusher protocol's state machine over a transport. It has no
// goroutine while idle: a reader runs only while the client has sent something (see serve), and a
// writer only while frames are queued (see sendQueue).
type Conn struct {
	// Static after admission.
	srv *Server
	app *app
	ws  transport
	id  string

	registered atomic.Bool // counted in the server's registry (see unregister)

	out sendQueue

	// Owned by the reader.
	subs       map[string]*subscription
	events     rateWindow       // client events
	subscribes tokenBucket      // subscribe requests
	user       *pusher.UserData // set by a successful pusher:signin

	// authorized is set once the socket signs in or subscribes to a private or presence channel; the
	// authorization timer (apps with AuthorizationTimeout) closes the socket unless it is. authTimer
	// is set at admission and stopped by cleanup.
	authorized atomic.Bool
	authTimer  *time.Timer

	lastActive atomic.Int64  // monotonic nanoseconds of the last inbound frame, Ping or Pong
	pingAt     atomic.Int64  // monotonic nanoseconds of the last liveness Ping sent
	idle       *time.Timer   // the liveness check, see liveness.go
	done       chan struct{} // closed once cleanup has run
}

// transport is what a connection needs of its socket: *ws.Socket, or a fake in tests where sockets
// are not the point.
type transport interface {
	sink
	// Next returns the next data message or control frame, waiting for the network if need be.
	Next(limit, hardLimit int) (ws.Message, error)
	// ParkIfIdle hands the socket to the poller when nothing is buffered (see ws.Socket.ParkIfIdle).
	ParkIfIdle(onReadable func()) bool
	// Close closes the socket at once, waking a parked reader.
	Close() error
}

func newConn(s *Server, t transport) *Conn {
	c := &Conn{srv: s, ws: t, done: make(chan struct{}), subs: make(map[string]*subscription)}
	c.out = newSendQueue(t, s.cfg.MaxQueueBytes, c)
	return c
}

// deliver sends a text frame; direct allows writing it at once (see sendQueue.send).
func (c *Conn) deliver(frame []byte, direct bool) bool {
	return c.out.send(ws.Frame{Op: ws.OpText, Data: frame}, direct)
}

// send sends a text frame at once if it can, and never blocks.
func (c *Conn) send(frame []byte) bool { return c.deliver(frame, true) }

// sendError reports a protocol error to the client, closing the connection when its code says so.
func (c *Conn) sendError(e *pusher.Error) {
	if e.Closes() {
		c.closeWith(e)
		return
	}
	c.send(pusher.ErrorFrame(e))
}

// closeWith sends pusher:error e after what is already queued, then closes with e's code.
func (c *Conn) closeWith(e *pusher.Error) { c.out.close(e, false) }

// cutOff disconnects the client as a slow consumer, dropping its backlog.
func (c *Conn) cutOff() {
	c.out.close(slowConsumerError, true)
	c.slowConsumer()
}

// slowConsumer counts and logs a client cut off for its backlog (queueOwner).
func (c *Conn) slowConsumer() {
	c.srv.stats.SlowConsumers.Add(1)
	c.logger().Warn().Int("max_queue_bytes", c.srv.cfg.MaxQueueBytes).Msg("slow consumer disconnected")
}

// hangUp closes the socket from outside the reader; a parked reader is woken and finishes
// (queueOwner).
func (c *Conn) hangUp() { _ = c.ws.Close() }

// closing unregisters the connection before its close frame goes out (queueOwner).
func (c *Conn) closing() { c.unregister() }

// unregister takes the connection out of the registry and the quotas, once.
func (c *Conn) unregister() {
	if c.registered.CompareAndSwap(true, false) {
		c.srv.conns.unregister(c)
	}
}

// closeSent gives the client closeGrace to answer the close frame (queueOwner).
func (c *Conn) closeSent() { time.AfterFunc(closeGrace, c.hangUp) }

// logger returns the connection's child logger. It is built on demand: a connection logs rarely, and
// a stored logger would cost every idle connection its bytes.
func (c *Conn) logger() *zerolog.Logger {
	l := c.srv.log.With().Str("app_id", c.app.ID).Str("socket_id", c.id).Logger()
	return &l
}

// finish ends the reader for good. A client's close frame is answered with the same code and a broken
// framing rule with its close code, after the frames already being written; the socket closes once
// that reply is out, then the connection leaves everything it joined.
func (c *Conn) finish(err error) {
	c.logEnd(err)
	var reply []byte
	var closed ws.CloseReceived
	var broken *ws.ProtocolError
	switch {
	case errors.As(err, &closed):
		reply = []byte{}
		if closed.Code != 0 {
			reply = ws.ClosePayload(closed.Code, "")
		}
	case errors.As(err, &broken):
		reply = ws.ClosePayload(broken.Code, broken.Reason)
	}
	// Unregistered first, so that a client reconnecting as soon as it reads the close is not refused
	// for a quota this connection still held.
	c.unregister()
	if !c.out.readerDone(reply) {
		_ = c.ws.Close()
	}
	c.cleanup()
}

// cleanup stops the timers and leaves every channel (presence members and vacated hooks included).
func (c *Conn) cleanup() {
	c.idle.Stop()
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	ctx := c.srv.ctx
	for _, sub := range c.subs {
		c.leave(ctx, sub)
	}
	c.signout(ctx)
	close(c.done)
}

func (c *Conn) logEnd(err error) {
	var closed ws.CloseReceived
	if errors.As(err, &closed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	if c.srv.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Err(err).Msg("connection ended")
	}
}
