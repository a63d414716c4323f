package channels

import (
	"context"
	"errors"
	"sync"

	"github.com/herald-rt/herald/pusher"
)

// ErrPresenceFull is returned by Presence.Join when a new user would exceed the member limit.
var ErrPresenceFull = errors.New("presence channel is full")

// Presence records who is in each presence channel, cluster-wide: a user on several sockets (on any
// node) is one member. The hub calls Join once per subscribing socket and Leave once per leaving one.
//
// Every change of a channel's members is stamped with a version that grows with each change (it need
// only be comparable within one channel). A subscriber's member list is read together with its
// version, and member_added / member_removed travel with the version of their change: a subscriber
// whose list already reflects a change is not told of it again. Without this, a socket subscribing
// while another user's join was being announced would list that user and then hear it join.
type Presence interface {
	// Join adds socketID as a socket of m.UserID. first reports that the user had no socket in the
	// channel before, so member_added is due, stamped with version. A new user past maxMembers gets
	// ErrPresenceFull.
	Join(ctx context.Context, appID, channel, socketID string, m pusher.Member, maxMembers int) (first bool, version uint64, err error)
	// Leave removes socketID; last reports that the user has no socket left, so member_removed is due,
	// stamped with version.
	Leave(ctx context.Context, appID, channel, socketID, userID string) (last bool, version uint64, err error)
	// Members returns the distinct members, each with the user_info of its first socket, and the
	// version of the last change they reflect.
	Members(ctx context.Context, appID, channel string) (members []pusher.Member, version uint64, err error)
}

// rosterLock returns the lock a presence channel's changes on this node are made and announced under:
// a socket leaving and another of the same user joining (a page reload) then announce member_removed
// before member_added, never the reverse, which would leave the user out of every other member list.
// Changes made on other nodes keep their order only as far as the broker delivers in order. Channels
// share a lock per stripe, so the number of locks is fixed.
func (s *Server) rosterLock(k channelKey) *sync.Mutex { return &s.rosters[s.hub.stripe(k)] }
