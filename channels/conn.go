package channels

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/pusher"
)

// Conn is one client connection. It has no goroutine while idle: a reader runs only while the client
// has sent something (see serve), and a writer only while frames are queued.
type Conn struct {
	// Static after admission.
	srv *Server
	app *app
	ws  transport
	id  string

	// Owned by the reader.
	subs map[string]*subscription
	rate rateWindow
	user *pusher.UserData // set by a successful pusher:signin

	// authorized is set once the socket signs in or subscribes to a private or presence channel; the
	// authorization timer (apps with AuthorizationTimeout) closes the socket unless it is.
	authorized atomic.Bool
	authTimer  *time.Timer

	// parked is set while the poller watches the socket for the next read (see poller_linux.go).
	parked atomic.Bool

	// The send queue, guarded by qmu. The byte bound applies to queued (bytes waiting in queue) plus
	// inflight (bytes of the batch the writer holds): the true backlog of the client.
	qmu        sync.Mutex
	queue      []outFrame
	spare      []outFrame
	queued     int
	inflight   int
	writing    bool        // a write is under way: a writer goroutine, or a direct write in sendFrame
	closing    bool        // no further frame is accepted
	held       *[]outFrame // while set, frames sent wait here (see holdSends)
	closeFrame []byte      // the close payload the writer sends once the queue is drained
	closeSent  bool        // the close frame was written; the socket waits for the client's reply
	readDone   bool        // the reader has stopped for good: nothing will read a close reply

	lastActive atomic.Int64 // monotonic nanoseconds of the last inbound frame, Ping or Pong
	pingAt     atomic.Int64 // monotonic nanoseconds of the last liveness Ping sent
	idle       *time.Timer  // liveness check and close grace, see liveness.go
	done       chan struct{}
}

// transport is what a connection needs of its socket; *wsSocket is the real one, and tests substitute
// a fake where sockets are not the point.
type transport interface {
	// next returns the next data message or control frame, waiting for the network if need be.
	next(limit, hardLimit int) (message, error)
	// pending reports whether bytes are buffered, so that next may not need the network.
	pending() bool
	// release drops the read buffers while nothing is buffered.
	release()
	// pollFD is the descriptor the poller may watch, or -1.
	pollFD() int
	// watch runs fn with that descriptor held open, and reports false without one.
	watch(fn func(fd int)) bool
	// write sends frames in order in one socket write.
	write(frames []outFrame) error
	// tryWrite writes a frame without waiting and returns the framed bytes the socket did not take.
	tryWrite(f outFrame) (rest []byte, err error)
	// lingerClose half-closes, drains what the client still sends for up to grace, then closes.
	lingerClose(grace time.Duration)
	close() error
	isClosed() bool
}

// logger returns the connection's child logger. It is built on demand: a connection logs rarely, and
// a stored logger would cost every idle connection its bytes.
func (c *Conn) logger() *zerolog.Logger {
	l := c.srv.log.With().Str("app_id", c.app.ID).Str("socket_id", c.id).Logger()
	return &l
}

// cleanup stops the timers, drops the backlog, leaves every channel (presence members and vacated hooks
// included) and frees the socket id.
func (c *Conn) cleanup() {
	c.idle.Stop()
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	for _, sub := range c.subs {
		c.leave(sub)
	}
	c.signout()
	c.srv.conns.unregister(c)
	close(c.done)
}

// hangUp closes the socket from outside the reader, waking a parked reader so that it finishes.
func (c *Conn) hangUp() {
	_ = c.ws.close()
	if unpark(c) {
		startReader(c)
	}
}

func (c *Conn) logEnd(err error) {
	var closed closeReceived
	if errors.As(err, &closed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	if c.srv.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Err(err).Msg("connection ended")
	}
}
