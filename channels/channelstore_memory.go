package channels

import (
	"context"
	"hash/maphash"
	"sort"
	"strings"
	"sync"

	"github.com/herald-rt/herald/pusher"
)

// MemoryChannels is the single-node Channels. Its size is bounded by the connections: a channel has an
// entry only while a socket is subscribed, and a presence channel holds at most its member limit.
type MemoryChannels struct {
	broker Broker // where presence changes are announced; nil: nowhere
	seed   maphash.Seed
	// announcing serialises, per stripe of channels, a presence change with its announcement, so that
	// a channel's announcements are published in the order of its changes. A change takes its stripe
	// first, then mu.
	announcing [hubShards]sync.Mutex

	mu   sync.Mutex
	apps map[string]map[string]*memChannel // by app id, then channel name
	// version stamps every change of any channel. One counter for all channels keeps versions growing
	// even when a channel empties, is forgotten and fills again.
	version uint64
}

type memChannel struct {
	subs    int
	members map[string]*presenceMember // presence channels only
	order   []string                   // user ids in join order, so member lists are stable
}

type presenceMember struct {
	member  pusher.Member
	sockets int
}

// NewMemoryChannels returns an empty in-memory store that announces presence changes through b (nil:
// changes are not announced).
func NewMemoryChannels(b Broker) *MemoryChannels {
	return &MemoryChannels{broker: b, seed: maphash.MakeSeed(), apps: make(map[string]map[string]*memChannel)}
}

func (p *MemoryChannels) stripe(appID, channel string) *sync.Mutex {
	return &p.announcing[maphash.String(p.seed, appID+"\x00"+channel)%hubShards]
}

// Subscribe implements Channels.
func (p *MemoryChannels) Subscribe(ctx context.Context, s Subscription) (Joined, error) {
	if s.Member == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		ch := p.channel(s.AppID, s.Channel)
		ch.subs++
		return Joined{Count: ch.subs, Version: p.stamp(), Occupied: ch.subs == 1}, nil
	}
	announcing := p.stripe(s.AppID, s.Channel)
	announcing.Lock()
	defer announcing.Unlock()
	j, err := p.join(s)
	if err == nil && j.Added && p.broker != nil {
		// The memory broker delivers inline and cannot fail.
		_ = p.broker.Publish(ctx, memberAdded(s.AppID, s.Channel, s.SocketID, *s.Member, j.Roster.Version))
	}
	return j, err
}

// join records a presence subscription; mu is taken here, the stripe is held.
func (p *MemoryChannels) join(s Subscription) (Joined, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.channel(s.AppID, s.Channel)
	if ch.members == nil {
		ch.members = make(map[string]*presenceMember)
	}
	m := *s.Member
	pm := ch.members[m.UserID]
	if pm == nil && s.MaxMembers > 0 && len(ch.members) >= s.MaxMembers {
		if ch.subs == 0 {
			p.forget(s.AppID, s.Channel)
		}
		return Joined{}, ErrPresenceFull
	}
	var j Joined
	if pm == nil {
		pm = &presenceMember{member: m}
		ch.members[m.UserID] = pm
		ch.order = append(ch.order, m.UserID)
		j.Added = true
	}
	pm.sockets++
	ch.subs++
	j.Count, j.Version, j.Occupied = ch.subs, p.stamp(), ch.subs == 1
	j.Roster = ch.roster(j.Version)
	return j, nil
}

// Unsubscribe implements Channels.
func (p *MemoryChannels) Unsubscribe(ctx context.Context, s Subscription) (Left, error) {
	if s.Member == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.leave(s), nil
	}
	announcing := p.stripe(s.AppID, s.Channel)
	announcing.Lock()
	defer announcing.Unlock()
	p.mu.Lock()
	l := p.leave(s)
	p.mu.Unlock()
	if l.Removed && p.broker != nil {
		_ = p.broker.Publish(ctx, memberRemoved(s.AppID, s.Channel, s.Member.UserID, l.Version))
	}
	return l, nil
}

// leave removes a subscription; mu is held.
func (p *MemoryChannels) leave(s Subscription) Left {
	ch := p.apps[s.AppID][s.Channel]
	if ch == nil || ch.subs == 0 {
		return Left{}
	}
	var l Left
	if s.Member != nil {
		if pm := ch.members[s.Member.UserID]; pm != nil {
			if pm.sockets--; pm.sockets == 0 {
				delete(ch.members, s.Member.UserID)
				ch.order = removeString(ch.order, s.Member.UserID)
				l.Removed = true
			}
		}
	}
	ch.subs--
	l.Count, l.Version, l.Vacated = ch.subs, p.stamp(), ch.subs == 0
	if l.Vacated {
		p.forget(s.AppID, s.Channel)
	}
	return l
}

func removeString(list []string, s string) []string {
	for i, x := range list {
		if x == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// channel returns the record of a channel, creating it; mu is held.
func (p *MemoryChannels) channel(appID, name string) *memChannel {
	chans := p.apps[appID]
	if chans == nil {
		chans = make(map[string]*memChannel)
		p.apps[appID] = chans
	}
	ch := chans[name]
	if ch == nil {
		ch = &memChannel{}
		chans[name] = ch
	}
	return ch
}

// forget drops an empty channel's record; mu is held.
func (p *MemoryChannels) forget(appID, name string) {
	delete(p.apps[appID], name)
	if len(p.apps[appID]) == 0 {
		delete(p.apps, appID)
	}
}

// stamp gives a change the next version; mu is held.
func (p *MemoryChannels) stamp() uint64 {
	p.version++
	return p.version
}

// roster copies the members; mu is held. version is the latest change it reflects.
func (ch *memChannel) roster(version uint64) Roster {
	r := Roster{Members: make([]pusher.Member, len(ch.order)), Version: version}
	for i, id := range ch.order {
		r.Members[i] = ch.members[id].member
	}
	return r
}

// Members implements Channels.
func (p *MemoryChannels) Members(_ context.Context, appID, channel string) (Roster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.apps[appID][channel]
	if ch == nil {
		return Roster{Version: p.version}, nil
	}
	return ch.roster(p.version), nil
}

// Info implements Channels.
func (p *MemoryChannels) Info(_ context.Context, appID, channel string) (ChannelInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := ChannelInfo{Name: channel, Version: p.version}
	if ch := p.apps[appID][channel]; ch != nil {
		info.Subscriptions, info.Users = ch.subs, len(ch.members)
	}
	return info, nil
}

// List implements Channels, in name order.
func (p *MemoryChannels) List(_ context.Context, appID, prefix string, _ bool) ([]ChannelInfo, error) {
	p.mu.Lock()
	var out []ChannelInfo
	for name, ch := range p.apps[appID] {
		if strings.HasPrefix(name, prefix) {
			out = append(out, ChannelInfo{Name: name, Subscriptions: ch.subs, Users: len(ch.members)})
		}
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
