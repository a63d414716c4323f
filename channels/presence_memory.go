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
}

type presenceChannel struct {
	members map[string]*presenceMember
	order   []string // user ids in join order, so member lists are stable
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
func (p *MemoryPresence) Join(_ context.Context, appID, channel, _ string, m pusher.Member, maxMembers int) (bool, error) {
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
		return false, nil
	}
	if maxMembers > 0 && len(pc.members) >= maxMembers {
		if len(pc.members) == 0 {
			delete(p.channels, k)
		}
		return false, ErrPresenceFull
	}
	pc.members[m.UserID] = &presenceMember{member: m, sockets: 1}
	pc.order = append(pc.order, m.UserID)
	return true, nil
}

// Leave implements Presence.
func (p *MemoryPresence) Leave(_ context.Context, appID, channel, _ string, userID string) (bool, error) {
	k := channelKey{appID, channel}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[k]
	if pc == nil {
		return false, nil
	}
	pm := pc.members[userID]
	if pm == nil {
		return false, nil
	}
	if pm.sockets--; pm.sockets > 0 {
		return false, nil
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
	return true, nil
}

// Members implements Presence.
func (p *MemoryPresence) Members(_ context.Context, appID, channel string) ([]pusher.Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[channelKey{appID, channel}]
	if pc == nil {
		return nil, nil
	}
	out := make([]pusher.Member, len(pc.order))
	for i, id := range pc.order {
		out[i] = pc.members[id].member
	}
	return out, nil
}
