package channels

import "context"

// Message is one encoded frame on its way to a channel's subscribers on every node.
type Message struct {
	AppID   string
	Channel string
	// Frame is the exact bytes every subscriber receives; it is never modified after Publish.
	Frame []byte
	// Except is a socket id that must not receive the frame (the sender of a client event, or the
	// socket_id a REST publish excluded); empty for none.
	Except string
	// Roster, on member_added and member_removed, is the presence version of the change announced
	// (see Presence): subscribers whose member list was read at that version or later skip the frame.
	// Zero for every other frame.
	Roster uint64
	// Cached, on an event of a cache channel, is its sequence number in the Cache: subscribers
	// replayed that event or a later one skip the frame. Zero for every other frame.
	Cached uint64
	// Count, on a subscription count, orders it among the channel's counts: a node delivers only a
	// count newer than the last it delivered on the channel, so the latest count is the last one a
	// subscriber hears. Zero for every other frame.
	Count uint64
	// Terminate, instead of delivering Frame, closes every subscriber with 4009. Sent to a user's
	// #server-to-user- channel it ends all the user's connections on every node.
	Terminate bool
	// Published, on a sample of REST publishes, is when the request arrived (unix nanoseconds): each
	// node that delivers the frame reports the time since to Config.Observer. Zero for the others.
	Published int64
}

// Broker carries every publish to every node, this one included, so there is one delivery path
// whichever broker is configured: in memory it delivers inline; a Redis broker publishes and each node
// delivers what it receives.
type Broker interface {
	// Publish sends m to every node's deliver function. It must not block on slow subscribers.
	Publish(ctx context.Context, m Message) error
	// Listen makes this node receive the channel's messages, and returns once it will: after it, a
	// message published on any node reaches this one. The server calls it once per local
	// subscription, before the subscription is confirmed, and Unlisten once when it ends; the broker
	// counts them.
	Listen(ctx context.Context, appID, channel string) error
	// Unlisten undoes one Listen.
	Unlisten(appID, channel string)
	// Start registers where this node's received messages go; it is called once, before any Publish.
	Start(deliver func(Message)) error
	// Close stops delivery.
	Close() error
}
