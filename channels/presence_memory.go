package channels

import (
	"context"
	"sync"

	"github.com/herald-rt/herald/pusher"
)

// MemoryPresence is the single-node Presence. Its size is bounded by the connections: an entry exists
// only while a socket is subscribed, and a channel holds at most maxMembers users.
type MemoryPresence struct {
	mu       sync.Mutex
	channels map[channelKey]*presenceChannel
	// version stamps every change of any channel. One counter for all channels keeps versions growing
	// even when a channel empties, is forgotten and fills again.
	version uint64
}

type presenceChannel struct {
	members map[string]*presenceMember
	order   []string // user ids in join order, so member lists are stable
	version uint64   // of the last change
}

type presenceMember struct {
	member  pusher.Member
	sockets int
}

// NewMemoryPresence returns an empty in-memory presence store.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{channels: make(map[channelKey]*presenceChannel)}
}

// Join implements Presence.
func (p *MemoryPresence) Join(_ context.Context, appID, channel, _ string, m pusher.Member, maxMembers int) (bool, uint64, error) {
	k := channelKey{appID, channel}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[k]
	if pc == nil {
		pc = &presenceChannel{members: make(map[string]*presenceMember)}
		p.channels[k] = pc
	}
	if pm := pc.members[m.UserID]; pm != nil {
		pm.sockets++
		return false, pc.version, nil
	}
	if maxMembers > 0 && len(pc.members) >= maxMembers {
		if len(pc.members) == 0 {
			delete(p.channels, k)
		}
		return false, pc.version, ErrPresenceFull
	}
	pc.members[m.UserID] = &presenceMember{member: m, sockets: 1}
	pc.order = append(pc.order, m.UserID)
	return true, p.stamp(pc), nil
}

// Leave implements Presence.
func (p *MemoryPresence) Leave(_ context.Context, appID, channel, _ string, userID string) (bool, uint64, error) {
	k := channelKey{appID, channel}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[k]
	if pc == nil {
		return false, 0, nil
	}
	pm := pc.members[userID]
	if pm == nil {
		return false, pc.version, nil
	}
	if pm.sockets--; pm.sockets > 0 {
		return false, pc.version, nil
	}
	delete(pc.members, userID)
	for i, id := range pc.order {
		if id == userID {
			pc.order = append(pc.order[:i], pc.order[i+1:]...)
			break
		}
	}
	if len(pc.members) == 0 {
		delete(p.channels, k)
	}
	return true, p.stamp(pc), nil
}

// stamp gives pc's change the next version; p.mu is held.
func (p *MemoryPresence) stamp(pc *presenceChannel) uint64 {
	p.version++
	pc.version = p.version
	return pc.version
}

// Members implements Presence.
func (p *MemoryPresence) Members(_ context.Context, appID, channel string) ([]pusher.Member, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[channelKey{appID, channel}]
	if pc == nil {
		return nil, p.version, nil
	}
	out := make([]pusher.Member, len(pc.order))
	for i, id := range pc.order {
		out[i] = pc.members[id].member
	}
	return out, pc.version, nil
}
