package channels

import (
	"context"
	"errors"

	"github.com/herald-rt/herald/pusher"
)

// ErrPresenceFull is returned by Channels.Subscribe when a new user would exceed the member limit.
var ErrPresenceFull = errors.New("presence channel is full")

// Channels records every channel's subscriptions, cluster-wide: how many there are (the subscription
// count, occupied and vacated) and, on presence channels, who the members are. A user on several
// sockets, on any node, is one member. Herald's own internal channels are not recorded.
//
// The store announces presence changes itself, through the broker: member_added when a user's first
// socket joins, member_removed when its last leaves. It announces, rather than its caller, so that a
// channel's announcements are published in the order of the changes they report: a page reload (one
// socket of a user leaving, another joining) must reach the other members as removed, then added,
// never the reverse, whichever nodes the two sockets are on.
//
// Every change is stamped with a version that grows with each change of the channel (it need only be
// comparable within one channel). A member announcement carries its change's version as
// Message.Roster, and a subscriber whose member list already reflects it skips it; a count carries
// its version as Message.Count, and a node delivers only counts newer than the last it delivered.
type Channels interface {
	// Subscribe records s. Joined reports the channel's count after it and, for a presence channel,
	// the members with the joiner among them. A new user past s.MaxMembers gets ErrPresenceFull.
	Subscribe(ctx context.Context, s Subscription) (Joined, error)
	// Unsubscribe removes s, recorded before.
	Unsubscribe(ctx context.Context, s Subscription) (Left, error)
	// Members returns the distinct members of a presence channel.
	Members(ctx context.Context, appID, channel string) (Roster, error)
	// Info describes one channel; an unoccupied one has no subscriptions.
	Info(ctx context.Context, appID, channel string) (ChannelInfo, error)
	// List describes every occupied channel of an app whose name starts with prefix; users asks for
	// the presence channels' member counts.
	List(ctx context.Context, appID, prefix string, users bool) ([]ChannelInfo, error)
}

// Subscription is one socket's subscription to a channel.
type Subscription struct {
	AppID, Channel, SocketID string
	// Member is the member a presence subscription joins as; nil on other channels.
	Member *pusher.Member
	// MaxMembers bounds a presence channel's distinct users (0: unbounded).
	MaxMembers int
	// Counted is set when the app announces this channel's subscription counts: a store that
	// records webhooks itself (see WebhookRecorder) records its subscription_count webhooks too.
	Counted bool
}

// WebhookRecorder is a Channels store that records the webhooks of its transitions itself, once per
// cluster, in a durable outbox: channel_occupied and channel_vacated, member_added and
// member_removed, and the subscription_count of Counted subscriptions. The server emits none of
// them for such a store; it reports no Occupied, Added, Vacated or Removed either.
type WebhookRecorder interface {
	RecordsWebhooks() bool
}

// Joined is what a subscription changed. Occupied and Added are the transitions a webhook is due
// for; a store that records them for webhooks itself (a cluster's outbox) reports neither.
type Joined struct {
	Count    int    // the channel's subscriptions after it, cluster-wide
	Version  uint64 // of the change, ordering Count among the channel's counts
	Occupied bool   // the channel had no subscription before: channel_occupied is due
	Added    bool   // the user had no socket in the channel before (announced by the store)
	Roster   Roster // presence channels: the members, the joiner among them
}

// Left is what an unsubscription changed; Vacated and Removed as Joined's transitions.
type Left struct {
	Count   int
	Version uint64
	Vacated bool // the channel has no subscription left: channel_vacated is due
	Removed bool // the user has no socket left in the channel (announced by the store)
}

// Roster is a presence channel's distinct members, each with the user_info of its first socket in
// join order, and the version of the last change they reflect.
type Roster struct {
	Members []pusher.Member
	Version uint64
}

// ChannelInfo describes a channel for the REST API.
type ChannelInfo struct {
	Name          string
	Subscriptions int
	Users         int    // presence channels, when asked for
	Version       uint64 // Info only: of the channel's last change, ordering Subscriptions
}

// memberAdded and memberRemoved are the announcements of a presence change.
func memberAdded(appID, channel, socketID string, m pusher.Member, version uint64) Message {
	return Message{AppID: appID, Channel: channel, Except: socketID, Roster: version,
		Frame: pusher.EventFrame(pusher.EventMemberAdded, channel, pusher.MemberAddedData(m), "")}
}

func memberRemoved(appID, channel, userID string, version uint64) Message {
	return Message{AppID: appID, Channel: channel, Roster: version,
		Frame: pusher.EventFrame(pusher.EventMemberRemoved, channel, pusher.MemberRemovedData(userID), "")}
}
