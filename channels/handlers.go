package channels

import (
	"github.com/herald-rt/herald/pusher"
)

// handleFrame decodes one client frame and dispatches on its event name. Every failure is answered
// with pusher:error; only errors whose code says so close the connection.
func (c *Conn) handleFrame(b []byte) {
	f, perr := pusher.DecodeClientFrame(b)
	if perr != nil {
		c.sendError(perr)
		return
	}
	switch f.Event {
	case pusher.EventPing:
		c.send(pusher.PongFrame)
	case pusher.EventPong:
		// Activity only; touch already recorded it.
	case pusher.EventSubscribe:
		c.handleSubscribe(f)
	case pusher.EventUnsubscribe:
		c.handleUnsubscribe(f)
	case pusher.EventSignin:
		c.handleSignin(f)
	default:
		if pusher.IsClientEvent(f.Event) {
			c.handleClientEvent(f)
			return
		}
		c.sendError(pusher.Errorf("Unsupported event '%s'", pusher.Truncate(f.Event, 64)))
	}
}
