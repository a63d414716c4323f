package channels

import (
	"context"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// epoch anchors the monotonic clock connections record activity on.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// touch records inbound activity: any frame, Ping or Pong.
func (c *Conn) touch() { c.lastActive.Store(monotonic()) }

// Timers that end connections: the idle probe and the authorization deadline.

// startLiveness arms the idle check. It is one runtime timer per connection that fires at most once
// per activity timeout, instead of a reset on every frame.
func (c *Conn) startLiveness() {
	c.touch()
	c.idle = time.AfterFunc(c.srv.cfg.ActivityTimeout, c.checkIdle)
}

// checkIdle probes a connection silent for the activity timeout with a WebSocket Ping frame — Java and
// Swift clients never answer pusher:ping — and closes it with 4201 when no Pong comes within
// PongTimeout. A client is therefore never cut off before activity_timeout + PongTimeout of silence.
func (c *Conn) checkIdle() {
	timeout := c.srv.cfg.ActivityTimeout
	if idle := time.Duration(monotonic() - c.lastActive.Load()); idle < timeout {
		c.rearm(timeout - idle)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.PongTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err == nil {
		c.touch()
		c.rearm(timeout)
		return
	}
	if !c.isClosing() {
		c.closeWith(pusher.CloseError(pusher.CodePongNotReceived, "Pong reply not received"))
	}
}

func (c *Conn) rearm(d time.Duration) {
	if !c.isClosing() {
		c.idle.Reset(d)
	}
}

func (c *Conn) isClosing() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.closing
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
