package channels

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/herald-rt/herald/pusher"
)

// MemoryPresence is the single-node Presence. Its size is bounded by the connections: an entry exists
// only while a socket is subscribed, and a channel holds at most maxMembers users.
type MemoryPresence struct {
	broker Broker // where changes are announced; nil: nowhere
	seed   maphash.Seed
	// announcing serialises, per stripe of channels, a change with its announcement, so that a
	// channel's announcements are published in the order of its changes. A change takes its stripe
	// first, then mu.
	announcing [hubShards]sync.Mutex

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

// NewMemoryPresence returns an empty in-memory presence store that announces its changes through b
// (nil: changes are not announced).
func NewMemoryPresence(b Broker) *MemoryPresence {
	return &MemoryPresence{broker: b, seed: maphash.MakeSeed(), channels: make(map[channelKey]*presenceChannel)}
}

func (p *MemoryPresence) stripe(k channelKey) *sync.Mutex {
	return &p.announcing[maphash.String(p.seed, k.app+"\x00"+k.name)%hubShards]
}

// Join implements Presence.
func (p *MemoryPresence) Join(ctx context.Context, appID, channel, socketID string, m pusher.Member, maxMembers int) (Roster, bool, error) {
	k := channelKey{appID, channel}
	announcing := p.stripe(k)
	announcing.Lock()
	defer announcing.Unlock()
	r, version, err := p.join(k, m, maxMembers)
	if err != nil || version == 0 {
		return r, false, err
	}
	return r, true, p.announce(ctx, memberAdded(appID, channel, socketID, m, version))
}

// join changes the state and returns the members after it; version is the change's, or 0 when the
// user was already a member.
func (p *MemoryPresence) join(k channelKey, m pusher.Member, maxMembers int) (r Roster, version uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[k]
	if pc == nil {
		pc = &presenceChannel{members: make(map[string]*presenceMember)}
		p.channels[k] = pc
	}
	switch pm := pc.members[m.UserID]; {
	case pm != nil:
		pm.sockets++
	case maxMembers > 0 && len(pc.members) >= maxMembers:
		if len(pc.members) == 0 {
			delete(p.channels, k)
		}
		return Roster{}, 0, ErrPresenceFull
	default:
		pc.members[m.UserID] = &presenceMember{member: m, sockets: 1}
		pc.order = append(pc.order, m.UserID)
		version = p.stamp(pc)
	}
	return pc.roster(), version, nil
}

// Leave implements Presence.
func (p *MemoryPresence) Leave(ctx context.Context, appID, channel, _ string, userID string) (bool, error) {
	k := channelKey{appID, channel}
	announcing := p.stripe(k)
	announcing.Lock()
	defer announcing.Unlock()
	version := p.leave(k, userID)
	if version == 0 {
		return false, nil
	}
	return true, p.announce(ctx, memberRemoved(appID, channel, userID, version))
}

// leave changes the state and returns the change's version, or 0 when the user keeps a socket.
func (p *MemoryPresence) leave(k channelKey, userID string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[k]
	if pc == nil {
		return 0
	}
	pm := pc.members[userID]
	if pm == nil {
		return 0
	}
	if pm.sockets--; pm.sockets > 0 {
		return 0
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
	return p.stamp(pc)
}

func (p *MemoryPresence) announce(ctx context.Context, m Message) error {
	if p.broker == nil {
		return nil
	}
	return p.broker.Publish(ctx, m)
}

// stamp gives pc's change the next version; p.mu is held.
func (p *MemoryPresence) stamp(pc *presenceChannel) uint64 {
	p.version++
	pc.version = p.version
	return pc.version
}

// roster copies the members; p.mu is held.
func (pc *presenceChannel) roster() Roster {
	r := Roster{Members: make([]pusher.Member, len(pc.order)), Version: pc.version}
	for i, id := range pc.order {
		r.Members[i] = pc.members[id].member
	}
	return r
}

// Members implements Presence.
func (p *MemoryPresence) Members(_ context.Context, appID, channel string) (Roster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.channels[channelKey{appID, channel}]
	if pc == nil {
		return Roster{Version: p.version}, nil
	}
	return pc.roster(), nil
}
