package channels

import (
	"context"
	"errors"

	"github.com/herald-rt/herald/pusher"
)

// ErrPresenceFull is returned by Presence.Join when a new user would exceed the member limit.
var ErrPresenceFull = errors.New("presence channel is full")

// Presence records who is in each presence channel, cluster-wide: a user on several sockets (on any
// node) is one member. The hub calls Join once per subscribing socket and Leave once per leaving one.
type Presence interface {
	// Join adds socketID as a socket of m.UserID. first reports that the user had no socket in the
	// channel before, so member_added is due. A new user past maxMembers gets ErrPresenceFull.
	Join(ctx context.Context, appID, channel, socketID string, m pusher.Member, maxMembers int) (first bool, err error)
	// Leave removes socketID; last reports that the user has no socket left, so member_removed is due.
	Leave(ctx context.Context, appID, channel, socketID, userID string) (last bool, err error)
	// Members returns the distinct members, each with the user_info of its first socket.
	Members(ctx context.Context, appID, channel string) ([]pusher.Member, error)
}
