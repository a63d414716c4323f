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
		c.handleSignin(f)
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
		// Idempotent: confirm again, counting nothing twice and announcing no one. A signed-in socket
		// already belongs to its own #server-to-user- channel, so its subscribe lands here too. The
		// channel lock orders the member list against announcements, as on a first subscribe.
		sub.ch.mu.Lock()
		c.send(c.succeeded(sub))
		sub.ch.mu.Unlock()
		return nil
	}
	kind, cached := pusher.KindOf(name)
	if kind == pusher.KindServerToUser {
		return pusher.AuthError("Subscribing to " + pusher.ServerToUserPrefix + "<id> requires signing in as that user first")
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
	first, version := false, uint64(0)
	if kind == pusher.KindPresence {
		roster := c.srv.rosterLock(channelKey{c.app.ID, name})
		roster.Lock()
		defer roster.Unlock() // until member_added is published
		var perr *pusher.Error
		if member, first, version, perr = c.joinPresence(name, channelData); perr != nil {
			return perr
		}
	}
	if kind.NeedsSignature() { // before subscription_succeeded, which the authorization timer must not follow
		c.authorized.Store(true)
	}
	sub, occupied := c.srv.hub.add(channelKey{c.app.ID, name}, c, member, func(sub *subscription) {
		c.send(c.succeeded(sub))
		if cached {
			c.replayCache(sub.ch)
		}
	})
	c.subs[name] = sub
	if occupied {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: name})
	}
	if first {
		frame := pusher.EventFrame(pusher.EventMemberAdded, name, pusher.MemberAddedData(member), "")
		c.srv.publish(Message{AppID: c.app.ID, Channel: name, Frame: frame, Except: c.id, Roster: version})
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: name, UserID: member.UserID})
	}
	c.srv.countChanged(c.app, name)
	return nil
}

// joinPresence adds the socket to a presence channel as the member its channel_data names, or, with
// no channel_data, as the user it signed in as. first reports that the user is new to the channel.
// version stamps the join (see Presence).
func (c *Conn) joinPresence(name, channelData string) (member pusher.Member, first bool, version uint64, perr *pusher.Error) {
	limits := c.app.Limits
	switch {
	case channelData != "":
		if member, perr = pusher.ParseChannelData(channelData, limits); perr != nil {
			return member, false, 0, perr
		}
	case c.user != nil:
		member = pusher.Member{UserID: c.user.ID, Info: c.user.Info}
	default:
		return member, false, 0, pusher.AuthError("Presence subscription requires channel_data with a user_id, or signing in first")
	}
	first, version, err := c.srv.presence.Join(context.Background(), c.app.ID, name, c.id, member, limits.MaxPresenceMembers)
	if errors.Is(err, ErrPresenceFull) {
		return member, false, 0, pusher.LimitError(403, "Presence channel is full: at most %d members", limits.MaxPresenceMembers)
	}
	if err != nil {
		c.logger().Error().Err(err).Str("channel", name).Msg("presence join failed")
		return member, false, 0, pusher.Errorf("Subscription failed: presence is unavailable, try again")
	}
	return member, first, version, nil
}

// succeeded encodes subscription_succeeded; for presence channels it carries the current members,
// and records their version so that announcements they already reflect are skipped. The channel is
// locked.
func (c *Conn) succeeded(sub *subscription) []byte {
	data := "{}"
	if sub.member.UserID != "" {
		members, version, err := c.srv.presence.Members(context.Background(), c.app.ID, sub.ch.key.name)
		if err != nil {
			c.logger().Error().Err(err).Str("channel", sub.ch.key.name).Msg("presence members unavailable")
			members = []pusher.Member{sub.member}
		}
		sub.roster = version
		data = pusher.PresenceData(members)
	}
	return pusher.EventFrame(pusher.EventSubscriptionSucceeded, sub.ch.key.name, data, "")
}

// cacheMissInterval is the least time between two cache_miss webhooks of one channel: subscribers
// arriving together produce one.
const cacheMissInterval = 5e9

// replayCache sends a cache channel's last event right after subscription_succeeded, or
// pusher:cache_miss. It runs with the channel locked, between the subscription becoming visible and
// any later fan-out, and a publish stores its event before fanning it out: the subscriber therefore
// sees either the newest event replayed or it live, never an older one after it.
func (c *Conn) replayCache(ch *channel) {
	ev, _, ok, err := c.srv.cache.Get(context.Background(), c.app.ID, ch.key.name)
	if err != nil {
		c.logger().Error().Err(err).Str("channel", ch.key.name).Msg("cache unavailable")
	}
	if ok {
		c.send(ev.Frame)
		return
	}
	c.send(pusher.CacheMissFrame(ch.key.name))
	if now := monotonic(); ch.missSentAt == 0 || now-ch.missSentAt >= cacheMissInterval {
		ch.missSentAt = now
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookCacheMiss, Channel: ch.key.name})
	}
}

// rejectSubscription answers a failed subscribe the Pusher way (pusher:error, code null) and, unless
// switched off, with a channel-scoped pusher:subscription_error the SDKs hand to the application.
func (c *Conn) rejectSubscription(channel string, perr *pusher.Error) {
	c.sendError(perr)
	if !c.srv.cfg.NoSubscriptionErrors && len(channel) <= 2*c.app.Limits.MaxChannelNameLength {
		c.send(pusher.SubscriptionErrorFrame(channel, perr))
	}
}

// handleUnsubscribe leaves a channel. Unknown channels are ignored, as are Herald's internal ones: a
// signed-in socket's own channels last as long as its sign-in.
func (c *Conn) handleUnsubscribe(f pusher.ClientFrame) {
	var d pusher.SubscribeData
	if err := pusher.DecodeData(f.Data, &d); err != nil || d.Channel == "" {
		c.sendError(pusher.Errorf("Invalid unsubscribe: data must be an object with a channel name"))
		return
	}
	if sub := c.subs[d.Channel]; sub != nil && !isInternal(d.Channel) {
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
		roster := c.srv.rosterLock(sub.ch.key)
		roster.Lock()
		last, version, err := c.srv.presence.Leave(context.Background(), c.app.ID, name, c.id, userID)
		if err != nil {
			c.logger().Error().Err(err).Str("channel", name).Msg("presence leave failed")
		}
		if last {
			frame := pusher.EventFrame(pusher.EventMemberRemoved, name, pusher.MemberRemovedData(userID), "")
			c.srv.publish(Message{AppID: c.app.ID, Channel: name, Frame: frame, Roster: version})
			c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: name, UserID: userID})
		}
		roster.Unlock()
	}
	if vacated {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: name})
	}
	c.srv.countChanged(c.app, name)
}

// joinInternal subscribes the socket to one of Herald's own channels (its #server-to-user- channel, or
// a #watchlist- channel). They count against no limit the client controls and fire no webhooks.
func (c *Conn) joinInternal(name string) {
	if c.subs[name] != nil {
		return
	}
	sub, _ := c.srv.hub.add(channelKey{c.app.ID, name}, c, pusher.Member{}, nil)
	c.subs[name] = sub
}
