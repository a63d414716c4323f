package channels

import (
	"math"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// epoch anchors the monotonic clock connections record activity on.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// touch records inbound activity: any frame, Ping or Pong.
func (c *Conn) touch() { c.lastActive.Store(monotonic()) }

// Timers that end connections: the idle probe and the authorization deadline.

// closeGrace is how long a socket waits for the client's reply to a close frame before it is closed
// anyway. Closing at once could reset the connection before the client reads the close code.
const closeGrace = 5 * time.Second

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
// Once a close frame is out, the same timer ends the close handshake (see writeLoop).
func (c *Conn) checkIdle() {
	c.qmu.Lock()
	closing, closeSent := c.closing, c.closeSent
	c.qmu.Unlock()
	switch {
	case closeSent:
		c.hangUp() // the client did not answer the close frame within closeGrace
		return
	case closing:
		return // the writer re-arms the timer once the close frame is out
	}
	timeout, pongTimeout := c.srv.cfg.ActivityTimeout, c.srv.cfg.PongTimeout
	now, last, pinged := monotonic(), c.lastActive.Load(), c.pingAt.Load()
	switch idle := time.Duration(now - last); {
	case idle < timeout:
		c.rearm(timeout - idle)
	case pinged <= last:
		c.pingAt.Store(now)
		c.sendFrame(outFrame{op: opPing}, true)
		c.rearm(pongTimeout)
	case time.Duration(now-pinged) < pongTimeout:
		c.rearm(pongTimeout - time.Duration(now-pinged))
	default:
		c.closeWith(pusher.CloseError(pusher.CodePongNotReceived, "Pong reply not received"))
	}
}

// rearm sets the liveness check d from now unless the connection is closing: then the timer belongs
// to the close handshake (see writeLoop), and both are set under qmu.
func (c *Conn) rearm(d time.Duration) {
	c.qmu.Lock()
	if !c.closing {
		c.idle.Reset(d)
	}
	c.qmu.Unlock()
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
