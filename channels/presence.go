package channels

import (
	"context"
	"errors"

	"github.com/herald-rt/herald/pusher"
)

// ErrPresenceFull is returned by Presence.Join when a new user would exceed the member limit.
var ErrPresenceFull = errors.New("presence channel is full")

// Presence records who is in each presence channel, cluster-wide, and announces its changes: a user
// on several sockets (on any node) is one member, and member_added / member_removed are published by
// the store itself, through the broker, when a user's first socket joins or its last leaves.
//
// The store announces, rather than its caller, so that a channel's announcements are published in the
// order of the changes they report: a page reload (one socket of a user leaving, another joining)
// must reach the other members as removed, then added, never the reverse, whichever nodes the two
// sockets are on.
//
// Every change of a channel's members is stamped with a version that grows with each change (it need
// only be comparable within one channel) and travels with its announcement as Message.Roster. A
// subscriber's member list comes with the version it reflects, and a subscriber whose list already
// reflects a change is not told of it again.
type Presence interface {
	// Join adds socketID as a socket of m.UserID and returns the members with the joiner among them.
	// added reports that the user had no socket in the channel before: the store has announced
	// member_added to every subscriber but socketID. A new user past maxMembers gets ErrPresenceFull.
	Join(ctx context.Context, appID, channel, socketID string, m pusher.Member, maxMembers int) (r Roster, added bool, err error)
	// Leave removes socketID; removed reports that the user has no socket left: the store has
	// announced member_removed.
	Leave(ctx context.Context, appID, channel, socketID, userID string) (removed bool, err error)
	// Members returns the distinct members of a channel.
	Members(ctx context.Context, appID, channel string) (Roster, error)
}

// Roster is a presence channel's distinct members, each with the user_info of its first socket in
// join order, and the version of the last change they reflect.
type Roster struct {
	Members []pusher.Member
	Version uint64
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
