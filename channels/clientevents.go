package channels

import "github.com/herald-rt/herald/pusher"

// handleClientEvent relays a client- event to the channel's other subscribers, checking in Pusher's
// order: feature enabled, name, channel kind, subscription, size, then rate.
func (c *Conn) handleClientEvent(f pusher.ClientFrame) {
	limits := c.app.Limits
	if !c.app.ClientEvents {
		c.sendError(pusher.Errorf("To send client events, you must enable this feature in the Settings page of your dashboard."))
		return
	}
	if len(f.Event) > limits.MaxEventNameLength {
		c.sendError(pusher.Errorf("Client event rejected - event name longer than %d characters", limits.MaxEventNameLength))
		return
	}
	if kind, _ := pusher.KindOf(f.Channel); !kind.AllowsClientEvents() {
		c.sendError(pusher.Errorf("Client event rejected - only supported on private and presence channels"))
		return
	}
	sub := c.subs.get(f.Channel)
	if sub == nil {
		c.sendError(pusher.Errorf("Client event rejected - not subscribed to channel '%s'", pusher.Truncate(f.Channel, 200)))
		return
	}
	data := "{}"
	if len(f.Data) > 0 {
		var err error
		if data, err = pusher.TextOf(f.Data); err != nil {
			c.sendError(pusher.Errorf("Client event rejected - data is not valid JSON"))
			return
		}
	}
	if len(data) > limits.MaxEventDataBytes {
		c.sendError(pusher.Errorf("Client event rejected - data larger than %d bytes", limits.MaxEventDataBytes))
		return
	}
	if !c.limits.allowEvent(monotonic(), limits.ClientEventsPerSecond) {
		c.app.stats.refused[RefusedClientEvent].Add(1)
		c.sendError(&pusher.Error{Code: pusher.CodeClientEventLimit, Message: "Client event rejected due to rate limit"})
		return
	}
	userID := sub.member().UserID
	// Client events are relayed, never cached: only REST events fill a cache channel.
	c.srv.publish(Message{AppID: c.app.ID, Channel: f.Channel, Frame: pusher.EventFrame(f.Event, f.Channel, data, userID), Except: c.id})
	c.srv.Note(c.app.ID, FeedEvent{Kind: FeedClientEvent, SocketID: c.id, Channel: f.Channel, Event: f.Event,
		UserID: userID, Size: len(data), Detail: feedText(data)})
	c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookClientEvent, Channel: f.Channel,
		Event: f.Event, Data: data, SocketID: c.id, UserID: userID})
}
