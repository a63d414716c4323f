package channels

import (
	"context"
	"errors"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// Subscribing and leaving. A subscription that needs something from the stores (the members of a
// presence channel, the last event of a cache channel) joins the hub first, collecting what is
// fanned out to it, then reads the stores with no lock held, then is activated: the snapshot goes
// out, then whatever the snapshot does not already reflect (see hub.activate).

var errSubscribeLimit = &pusher.Error{Code: pusher.CodeSubscribeLimit, Message: "Subscription rejected due to rate limit",
	Status: 429, Type: pusher.TypeLimitReached}

func (c *Conn) handleSubscribe(f pusher.ClientFrame) {
	var d pusher.SubscribeData
	if err := pusher.DecodeData(f.Data, &d); err != nil || d.Channel == "" {
		c.sendError(pusher.Errorf("Invalid subscribe: data must be an object with a channel name"))
		return
	}
	if !c.limits.allowSubscribe(monotonic(), c.app.Limits.SubscriptionsPerSecond) {
		c.srv.stats.SubscribesRefused.Add(1)
		c.app.stats.refused[RefusedSubscribe].Add(1)
		c.rejectSubscription(d.Channel, errSubscribeLimit)
		return
	}
	if perr := c.subscribe(c.srv.ctx, d); perr != nil {
		c.rejectSubscription(d.Channel, perr)
	}
}

// subscribe checks the name, the signature and the limits before touching any shared state, then
// makes the node listen to the channel, records the subscription in the store and joins the hub.
func (c *Conn) subscribe(ctx context.Context, d pusher.SubscribeData) *pusher.Error {
	name, limits := d.Channel, c.app.Limits
	if perr := pusher.ValidateChannelName(name, limits.MaxChannelNameLength); perr != nil {
		return perr
	}
	if sub := c.subs.get(name); sub != nil {
		// Idempotent: confirm again with a fresh snapshot, counting nothing twice and announcing no
		// one. A signed-in socket already belongs to its own #server-to-user- channel, so its
		// subscribe lands here too.
		c.resubscribe(ctx, sub)
		return nil
	}
	kind, cached := pusher.KindOf(name)
	if kind == pusher.KindServerToUser {
		return pusher.AuthError("Subscribing to " + pusher.ServerToUserPrefix + "<id> requires signing in as that user first")
	}
	if c.subs.len() >= limits.MaxChannelsPerSocket {
		return pusher.LimitError(403, "Too many subscriptions: at most %d channels per connection", limits.MaxChannelsPerSocket)
	}
	channelData := string(d.ChannelData)
	if kind.NeedsSignature() {
		if err := auth.VerifyChannel(c.app.Key, c.app.Secret, d.Auth, c.id, name, channelData); err != nil {
			return pusher.AuthError(err.Error())
		}
	}
	rec := Subscription{AppID: c.app.ID, Channel: name, SocketID: c.id, Counted: counted(c.app, name)}
	var member pusher.Member
	if kind == pusher.KindPresence {
		var perr *pusher.Error
		if member, perr = c.presenceMember(channelData); perr != nil {
			return perr
		}
		rec.Member, rec.MaxMembers = &member, limits.MaxPresenceMembers
	}
	if kind.NeedsSignature() { // before subscription_succeeded, which the authorization timer must not follow
		c.authorized.Store(true)
	}
	// Listening first: once subscription_succeeded is out, whatever is published to the channel on
	// any node must reach this one.
	if err := c.srv.broker.Listen(ctx, c.app.ID, name); err != nil {
		return c.storeFailed(err, name, "broker listen")
	}
	k := channelKey{c.app.ID, name}
	// A plain subscription joins the hub once recorded. A presence, cache or counted one joins it
	// first, pending, so that what is published meanwhile (a member change, a newer count from another
	// node) waits for its snapshot instead of passing it by.
	if kind != pusher.KindPresence && !cached && !counted(c.app, name) {
		j, err := c.srv.store.Subscribe(ctx, rec)
		if err != nil {
			c.srv.broker.Unlisten(c.app.ID, name)
			return c.storeFailed(err, name, "subscribe")
		}
		c.joined(c.srv.hub.add(k, c, member, false, succeededFrame(name, "{}")), j)
		return nil
	}
	sub := c.srv.hub.add(k, c, member, true, nil)
	j, err := c.srv.store.Subscribe(ctx, rec)
	if err != nil {
		c.srv.hub.remove(sub)
		c.srv.broker.Unlisten(c.app.ID, name)
		if errors.Is(err, ErrPresenceFull) {
			return pusher.LimitError(403, "Presence channel is full: at most %d members", limits.MaxPresenceMembers)
		}
		return c.storeFailed(err, name, "subscribe")
	}
	snapshot, replayed := c.snapshot(ctx, sub, j.Roster)
	c.srv.hub.activate(sub, snapshot, j.Roster.Version, replayed)
	c.joined(sub, j)
	return nil
}

// storeFailed logs a store that failed a subscription, and is what the client is told: the
// subscription failed, and it may try again.
func (c *Conn) storeFailed(err error, channel, op string) *pusher.Error {
	c.logger().Error().Err(err).Str("channel", channel).Str("op", op).Msg("subscription failed: store unavailable")
	return &pusher.Error{Message: "Subscription failed: the server cannot reach its store, try again", Status: 503}
}

// joined records a new subscription and reports what it changed.
func (c *Conn) joined(sub *subscription, j Joined) {
	name := sub.ch.key.name
	c.subs.add(sub)
	c.srv.Note(c.app.ID, FeedEvent{Kind: FeedSubscribe, SocketID: c.id, Channel: name, UserID: sub.member().UserID})
	if j.Occupied {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: name})
	}
	if j.Added {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: name, UserID: sub.member().UserID})
	}
	c.srv.countChanged(c.app, name, j.Count, j.Version)
}

// resubscribe answers a subscribe to a channel the socket is already in with a fresh snapshot.
func (c *Conn) resubscribe(ctx context.Context, sub *subscription) {
	name := sub.ch.key.name
	kind, cached := pusher.KindOf(name)
	if kind != pusher.KindPresence && !cached {
		c.send(succeededFrame(name, "{}"))
		return
	}
	c.srv.hub.suspend(sub)
	var roster Roster
	if kind == pusher.KindPresence {
		var err error
		if roster, err = c.srv.store.Members(ctx, c.app.ID, name); err != nil {
			c.logger().Error().Err(err).Str("channel", name).Msg("presence members unavailable")
			roster = Roster{Members: []pusher.Member{sub.member()}}
		}
	}
	snapshot, replayed := c.snapshot(ctx, sub, roster)
	c.srv.hub.activate(sub, snapshot, roster.Version, replayed)
}

// presenceMember is the member a presence subscription joins as: the one its channel_data names, or,
// with no channel_data, the user the socket signed in as.
func (c *Conn) presenceMember(channelData string) (pusher.Member, *pusher.Error) {
	switch {
	case channelData != "":
		return pusher.ParseChannelData(channelData, c.app.Limits)
	case c.user != nil:
		return pusher.Member{UserID: c.user.ID, Info: c.user.Info}, nil
	}
	return pusher.Member{}, pusher.AuthError("Presence subscription requires channel_data with a user_id, or signing in first")
}

// snapshot is what a subscriber of a presence or cache channel is told first: subscription_succeeded
// (with the members of a presence channel), then a cache channel's last event or pusher:cache_miss.
// replayed is the sequence of the event replayed.
func (c *Conn) snapshot(ctx context.Context, sub *subscription, roster Roster) (frames [][]byte, replayed uint64) {
	name := sub.ch.key.name
	data := "{}"
	if sub.member().UserID != "" {
		data = pusher.PresenceData(roster.Members)
	}
	frames = append(frames, succeededFrame(name, data))
	if _, cached := pusher.KindOf(name); !cached {
		return frames, 0
	}
	ev, ok, err := c.srv.cache.Get(ctx, c.app.ID, name)
	if err != nil {
		c.logger().Error().Err(err).Str("channel", name).Msg("cache unavailable")
	}
	if ok {
		return append(frames, ev.Frame), ev.Seq
	}
	c.cacheMiss(ctx, name)
	return append(frames, pusher.CacheMissFrame(name)), 0
}

// cacheMiss reports a miss of a cache channel to the webhooks, once per channel and
// CacheMissInterval: this node's throttle first, so that a burst of subscribers asks the Cache (a
// round trip on a cluster) once, then the Cache, which decides for the cluster.
func (c *Conn) cacheMiss(ctx context.Context, name string) {
	if !c.srv.misses.first(channelKey{c.app.ID, name}, c.srv.cfg.Now()) {
		return
	}
	if first, err := c.srv.cache.Miss(ctx, c.app.ID, name); err != nil {
		c.logger().Error().Err(err).Str("channel", name).Msg("cache_miss webhook not sent: cache unavailable")
	} else if first {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookCacheMiss, Channel: name})
	}
}

func succeededFrame(channel, data string) []byte {
	return pusher.EventFrame(pusher.EventSubscriptionSucceeded, channel, data, "")
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
	if sub := c.subs.get(d.Channel); sub != nil && !isInternal(d.Channel) {
		c.leave(c.srv.ctx, sub)
		c.subs.remove(sub)
	}
}

// leave removes a subscription from the hub first, so the leaving socket never hears of its own
// departure, then from the store, which announces member_removed when the user's last socket went.
func (c *Conn) leave(ctx context.Context, sub *subscription) {
	name := sub.ch.key.name
	c.srv.hub.remove(sub)
	defer c.srv.broker.Unlisten(c.app.ID, name)
	if isInternal(name) {
		return
	}
	c.srv.Note(c.app.ID, FeedEvent{Kind: FeedUnsubscribe, SocketID: c.id, Channel: name, UserID: sub.member().UserID})
	rec := Subscription{AppID: c.app.ID, Channel: name, SocketID: c.id, Counted: counted(c.app, name)}
	if m := sub.member(); m.UserID != "" {
		rec.Member = &m
	}
	l, err := c.srv.store.Unsubscribe(ctx, rec)
	if err != nil {
		c.logger().Error().Err(err).Str("channel", name).Msg("unsubscribe failed: store unavailable")
		return
	}
	if l.Removed {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: name, UserID: rec.Member.UserID})
	}
	if l.Vacated {
		c.srv.emit(c.app.ID, pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: name})
	}
	c.srv.countChanged(c.app, name, l.Count, l.Version)
}

// joinInternal subscribes the socket to one of Herald's own channels (its #server-to-user- channel, or
// a #watchlist- channel). They count against no limit the client controls, are recorded in no store
// and fire no webhooks. A pending subscription collects its frames until it is activated. It returns
// nil when the socket is in the channel already, or the node cannot listen to it.
func (c *Conn) joinInternal(ctx context.Context, name string, pending bool) *subscription {
	if c.subs.get(name) != nil {
		return nil
	}
	if err := c.srv.broker.Listen(ctx, c.app.ID, name); err != nil {
		c.logger().Error().Err(err).Str("channel", name).Msg("broker listen failed")
		return nil
	}
	sub := c.srv.hub.add(channelKey{c.app.ID, name}, c, pusher.Member{}, pending, nil)
	c.subs.add(sub)
	return sub
}
