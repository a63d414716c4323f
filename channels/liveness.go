package channels

import (
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// Liveness: one goroutine of the server sweeps every connection a few times per timeout instead of
// each connection holding runtime timers, which would cost every idle connection about 100 bytes each.

// epoch anchors the monotonic clock connections record activity on.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// touch records inbound activity: any frame, Ping or Pong.
func (c *Conn) touch() { c.lastActive.Store(monotonic()) }

// sweepInterval is how often connections are checked: often enough that no deadline is overshot by
// more than a quarter of it, at most once a second.
func (s *Server) sweepInterval() time.Duration {
	d := min(time.Second, s.cfg.ActivityTimeout/4, s.cfg.PongTimeout/4)
	for _, a := range s.apps.Load().byID {
		if a.AuthorizationTimeout > 0 {
			d = min(d, a.AuthorizationTimeout/4)
		}
	}
	return max(d, 10*time.Millisecond)
}

// sweepLiveness checks every registered connection each interval until the server shuts down.
func (s *Server) sweepLiveness() {
	t := time.NewTicker(s.sweepInterval())
	defer t.Stop()
	var batch []*Conn
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := monotonic()
		s.conns.each(&batch, func(c *Conn) { c.checkLiveness(now) })
		s.closeIdleSessions(now)
	}
}

// checkLiveness probes a connection silent for the activity timeout with a WebSocket Ping frame — Java
// and Swift clients never answer pusher:ping — and closes it with 4201 when nothing arrives within
// PongTimeout. A client is therefore never cut off before activity_timeout + PongTimeout of silence.
// It also enforces the app's AuthorizationTimeout: a socket that has neither signed in nor subscribed
// to a private or presence channel by then is closed with 4009.
func (c *Conn) checkLiveness(now int64) {
	if t := c.app.AuthorizationTimeout; t > 0 && now-c.admitted >= int64(t) && !c.authorized.Load() {
		c.closeWith(pusher.CloseError(pusher.CodeUnauthorized, "Connection not authorized within "+t.String()))
		return
	}
	last, pinged := c.lastActive.Load(), c.pingAt.Load()
	switch {
	case now-last < int64(c.srv.cfg.ActivityTimeout):
	case pinged <= last:
		c.pingAt.Store(now)
		c.out.send(ws.Frame{Op: ws.OpPing}, true)
	case now-pinged >= int64(c.srv.cfg.PongTimeout):
		c.closeWith(pusher.CloseError(pusher.CodePongNotReceived, "Pong reply not received"))
	}
}
