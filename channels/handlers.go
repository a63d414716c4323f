package channels

import (
	"context"
	"errors"

	"github.com/herald-rt/herald/auth"
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
		c.sendError(pusher.Errorf("User authentication (pusher:signin) is not supported by this server yet"))
	default:
		if pusher.IsClientEvent(f.Event) {
			c.handleClientEvent(f)
			return
		}
		c.sendError(pusher.Errorf("Unsupported event '%s'", pusher.Truncate(f.Event, 64)))
	}
}

func (c *Conn) handleSubscribe(f pusher.ClientFrame) {
	var d pusher.SubscribeData
	if err := pusher.DecodeData(f.Data, &d); err != nil || d.Channel == "" {
		c.sendError(pusher.Errorf("Invalid subscribe: data must be an object with a channel name"))
		return
	}
	if perr := c.subscribe(d); perr != nil {
		c.rejectSubscription(d.Channel, perr)
	}
}

// subscribe checks the name, the signature and the limits before touching any shared state, then joins
// presence (for presence channels) and the hub.
func (c *Conn) subscribe(d pusher.SubscribeData) *pusher.Error {
	name, limits := d.Channel, c.app.Limits
	if perr := pusher.ValidateChannelName(name, limits.MaxChannelNameLength); perr != nil {
		return perr
	}
	if sub := c.subs[name]; sub != nil {
		// Idempotent: confirm again, counting nothing twice and announcing no one.
		c.send(c.succeeded(sub))
		return nil
	}
	kind, _ := pusher.KindOf(name)
	if kind == pusher.KindServerToUser {
		return pusher.AuthError("Subscribing to " + pusher.ServerToUserPrefix + " channels requires signing in as that user")
	}
	if len(c.subs) >= limits.MaxChannelsPerSocket {
		return pusher.LimitError(403, "Too many subscriptions: at most %d channels per connection", limits.MaxChannelsPerSocket)
	}
	channelData := string(d.ChannelData)
	if kind.NeedsSignature() {
		if err := auth.VerifyChannel(c.app.Key, c.app.Secret, d.Auth, c.id, name, channelData); err != nil {
			return pusher.AuthError(err.Error())
		}
	}
	var member pusher.Member
	first := false
	if kind == pusher.KindPresence {
		if channelData == "" {
			return pusher.AuthError("Presence subscription requires channel_data with a user_id")
		}
		var perr *pusher.Error
		if member, perr = pusher.ParseChannelData(channelData, limits); perr != nil {
			return perr
		}
		var err error
		first, err = c.srv.presence.Join(context.Background(), c.app.ID, name, c.id, member, limits.MaxPresenceMembers)
		if errors.Is(err, ErrPresenceFull) {
			return pusher.LimitError(403, "Presence channel is full: at most %d members", limits.MaxPresenceMembers)
		}
		if err != nil {
			c.logger().Error().Err(err).Str("channel", name).Msg("presence join failed")
			return pusher.Errorf("Subscription failed: presence is unavailable, try again")
		}
	}
	sub, occupied := c.srv.hub.add(channelKey{c.app.ID, name}, c, member, func(sub *subscription) {
		c.send(c.succeeded(sub))
	})
	c.subs[name] = sub
	if occupied {
		c.srv.hooks.Emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: name})
	}
	if first {
		c.srv.publish(c.app.ID, name, pusher.EventFrame(pusher.EventMemberAdded, name, pusher.MemberAddedData(member), ""), c.id)
		c.srv.hooks.Emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: name, UserID: member.UserID})
	}
	return nil
}

// succeeded encodes subscription_succeeded; for presence channels it carries the current members.
func (c *Conn) succeeded(sub *subscription) []byte {
	data := "{}"
	if sub.member.UserID != "" {
		members, err := c.srv.presence.Members(context.Background(), c.app.ID, sub.ch.key.name)
		if err != nil {
			c.logger().Error().Err(err).Str("channel", sub.ch.key.name).Msg("presence members unavailable")
			members = []pusher.Member{sub.member}
		}
		data = pusher.PresenceData(members)
	}
	return pusher.EventFrame(pusher.EventSubscriptionSucceeded, sub.ch.key.name, data, "")
}

// rejectSubscription answers a failed subscribe the Pusher way (pusher:error, code null) and, unless
// switched off, with a channel-scoped pusher:subscription_error the SDKs hand to the application.
func (c *Conn) rejectSubscription(channel string, perr *pusher.Error) {
	c.sendError(perr)
	if !c.srv.cfg.NoSubscriptionErrors && len(channel) <= 2*c.app.Limits.MaxChannelNameLength {
		c.send(pusher.SubscriptionErrorFrame(channel, perr))
	}
}

func (c *Conn) handleUnsubscribe(f pusher.ClientFrame) {
	var d pusher.SubscribeData
	if err := pusher.DecodeData(f.Data, &d); err != nil || d.Channel == "" {
		c.sendError(pusher.Errorf("Invalid unsubscribe: data must be an object with a channel name"))
		return
	}
	if sub := c.subs[d.Channel]; sub != nil {
		c.leave(sub)
		delete(c.subs, d.Channel)
	}
}

// leave removes a subscription from the hub first, so the leaving socket never hears of its own
// departure, then from presence, announcing member_removed when the user's last socket went.
func (c *Conn) leave(sub *subscription) {
	name := sub.ch.key.name
	vacated := c.srv.hub.remove(sub)
	if userID := sub.member.UserID; userID != "" {
		last, err := c.srv.presence.Leave(context.Background(), c.app.ID, name, c.id, userID)
		if err != nil {
			c.logger().Error().Err(err).Str("channel", name).Msg("presence leave failed")
		}
		if last {
			c.srv.publish(c.app.ID, name, pusher.EventFrame(pusher.EventMemberRemoved, name, pusher.MemberRemovedData(userID), ""), "")
			c.srv.hooks.Emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: name, UserID: userID})
		}
	}
	if vacated {
		c.srv.hooks.Emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: name})
	}
}

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
	sub := c.subs[f.Channel]
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
	if !c.rate.allow(monotonic(), limits.ClientEventsPerSecond) {
		c.sendError(&pusher.Error{Code: pusher.CodeClientEventLimit, Message: "Client event rejected due to rate limit"})
		return
	}
	userID := sub.member.UserID
	c.srv.publish(c.app.ID, f.Channel, pusher.EventFrame(f.Event, f.Channel, data, userID), c.id)
	c.srv.hooks.Emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookClientEvent, Channel: f.Channel,
		Event: f.Event, Data: data, SocketID: c.id, UserID: userID})
}
