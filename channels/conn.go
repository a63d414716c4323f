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
// writer only while frames are queued (see sendQueue). Its timers are the server's liveness sweep
// (see liveness.go), so an idle connection costs its structs and nothing else.
type Conn struct {
	// Static after admission.
	srv      *Server
	app      *app
	ws       transport
	id       string
	admitted int64 // monotonic nanoseconds, for the authorization deadline

	quotaHeld  bool        // counted by the cluster's Quota (see admitQuota)
	registered atomic.Bool // counted in the server's registry (see unregister)
	// authorized is set once the socket signs in or subscribes to a private or presence channel; the
	// liveness sweep closes sockets of apps with an AuthorizationTimeout that are not by then.
	authorized atomic.Bool
	cleaned    atomic.Bool // cleanup has run: the connection is gone

	out sendQueue

	// Owned by the reader.
	subs   subscriptions
	limits rateLimits
	user   *pusher.UserData // set by a successful pusher:signin

	lastActive atomic.Int64 // monotonic nanoseconds of the last inbound frame, Ping or Pong
	pingAt     atomic.Int64 // monotonic nanoseconds of the last liveness Ping sent
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
	c := &Conn{srv: s, ws: t, admitted: monotonic()}
	c.lastActive.Store(c.admitted)
	c.out = newSendQueue(c)
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
	c.noteError(e)
	if e.Closes() {
		c.closeWith(e)
		return
	}
	c.send(pusher.ErrorFrame(e))
}

// noteError shows an error sent to the client in the console feed.
func (c *Conn) noteError(e *pusher.Error) {
	c.srv.Note(c.app.ID, FeedEvent{Kind: FeedError, SocketID: c.id, Code: e.Code, Detail: feedText(e.Message)})
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
	c.app.stats.slowConsumers.Add(1)
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
	c.recordClose(err)
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
	if !c.out.readerDone(reply, errors.As(err, &closed)) {
		_ = c.ws.Close()
	}
	c.cleanup()
}

// cleanup signs out and leaves every channel (presence members and vacated hooks included). Signing
// out comes first, so that a user whose member_removed has been heard already reads as offline.
func (c *Conn) cleanup() {
	ctx := c.srv.ctx
	c.srv.releaseQuota(c)
	c.signout(ctx)
	for _, sub := range c.subs.list {
		c.leave(ctx, sub)
	}
	c.cleaned.Store(true)
	c.srv.conns.live.Add(-1)
	if w, ok := c.srv.waiters.LoadAndDelete(c); ok {
		close(w.(chan struct{}))
	}
}

// gone returns a channel closed once the connection has been cleaned up. It is for the one goroutine
// that waits for a connection to end, Shutdown's; the channel lives in the server's waiters while it
// waits, since a channel per connection would cost every idle connection its bytes.
func (c *Conn) gone() <-chan struct{} {
	w := make(chan struct{})
	c.srv.waiters.Store(c, w)
	if c.cleaned.Load() { // cleanup may have run before it could see the waiter
		c.srv.waiters.Delete(c)
		return closedChan
	}
	return w
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *Conn) logEnd(err error) {
	var closed ws.CloseReceived
	if errors.As(err, &closed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	if c.srv.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Err(err).Msg("connection ended")
	}
}

// recordClose counts the connection's end by close code: the code the server closed it with, else
// the client's (1005 when its close frame had none), else 0: it dropped without a close frame.
func (c *Conn) recordClose(err error) {
	code := c.out.closedWith()
	var closed ws.CloseReceived
	if code == 0 && errors.As(err, &closed) {
		code = closed.Code
		if code == 0 {
			code = 1005
		}
	}
	c.app.stats.closed(code)
	c.srv.Note(c.app.ID, FeedEvent{Kind: FeedDisconnect, SocketID: c.id, Code: code})
	if c.srv.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Int("code", code).Msg("connection closed")
	}
}
