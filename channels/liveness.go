package channels

import (
	"math"
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// Timers that end connections: the idle probe and the authorization deadline.

// epoch anchors the monotonic clock connections record activity on.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// touch records inbound activity: any frame, Ping or Pong.
func (c *Conn) touch() { c.lastActive.Store(monotonic()) }

// startLiveness arms the idle check. It is one runtime timer per connection that fires at most once
// per activity timeout, instead of a reset on every frame.
func (c *Conn) startLiveness() {
	c.touch()
	// Armed only once stored: checkIdle reads c.idle, and Reset is what orders the two.
	c.idle = time.AfterFunc(time.Duration(math.MaxInt64), c.checkIdle)
	c.idle.Reset(c.srv.cfg.ActivityTimeout)
}

// checkIdle probes a connection silent for the activity timeout with a WebSocket Ping frame — Java and
// Swift clients never answer pusher:ping — and closes it with 4201 when nothing arrives within
// PongTimeout. A client is therefore never cut off before activity_timeout + PongTimeout of silence.
// A closing connection is left to its close handshake.
func (c *Conn) checkIdle() {
	if c.out.isClosing() {
		return
	}
	timeout, pongTimeout := c.srv.cfg.ActivityTimeout, c.srv.cfg.PongTimeout
	now, last, pinged := monotonic(), c.lastActive.Load(), c.pingAt.Load()
	switch idle := time.Duration(now - last); {
	case idle < timeout:
		c.idle.Reset(timeout - idle)
	case pinged <= last:
		c.pingAt.Store(now)
		c.out.send(ws.Frame{Op: ws.OpPing}, true)
		c.idle.Reset(pongTimeout)
	case time.Duration(now-pinged) < pongTimeout:
		c.idle.Reset(pongTimeout - time.Duration(now-pinged))
	default:
		c.closeWith(pusher.CloseError(pusher.CodePongNotReceived, "Pong reply not received"))
	}
}

// startAuthorizationTimer enforces the app's AuthorizationTimeout: a socket that has neither signed in
// nor subscribed to a private or presence channel by then is closed with 4009.
func (c *Conn) startAuthorizationTimer() {
	timeout := c.app.AuthorizationTimeout
	if timeout <= 0 {
		return
	}
	c.authTimer = time.AfterFunc(timeout, func() {
		if !c.authorized.Load() {
			c.closeWith(pusher.CloseError(pusher.CodeUnauthorized, "Connection not authorized within "+timeout.String()))
		}
	})
}
