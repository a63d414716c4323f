package channels

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// hubShards spreads channels over independently locked maps so that subscribes on one channel never
// wait for a fan-out on another.
const hubShards = 64

// hub is this node's index of channels and their local subscribers. It knows nothing of apps, auth,
// stores or sockets: it adds, activates, removes and fans out bytes, each under the smallest lock that
// is correct, and never calls out of the process while holding one.
type hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
}

type hubShard struct {
	mu       sync.RWMutex
	channels map[channelKey]*channel
}

type channelKey struct {
	app  string
	name string
}

// channel holds one channel's local subscribers. The shard lock guards its presence in the map; mu
// guards subs and every subscription's index and snapshot versions, so a fan-out holds only mu, as a
// reader.
type channel struct {
	key  channelKey
	mu   sync.RWMutex
	subs []*subscription

	// lastFanout is when the channel's last fan-out started (see fanout).
	lastFanout atomic.Int64
	// lastCount is the version of the last subscription count delivered here (see Message.Count),
	// guarded by mu.
	lastCount uint64
}

// writeCost is about twice what one socket write of a small frame costs the server (receiving side
// included, on loopback). It only tells a burst of publishes from a trickle (see fanout): with less
// margin, writing at once could slow a burst until it no longer looked like one.
const writeCost = int64(10 * time.Microsecond)

// subscription is one socket on one channel. It is owned by the socket's reader except for the
// fields guarded by the channel's lock.
type subscription struct {
	conn *Conn
	ch   *channel

	// Guarded by ch.mu.
	index int32 // position in ch.subs
	// pending is set while the subscriber's snapshot is read from the stores: frames fanned out
	// meanwhile wait here and go out after the snapshot (see activate).
	pending *pendingFrames
	// snap is what a subscription with a snapshot (presence and cache channels) knows of it; nil for
	// every other channel, whose subscriptions stay small.
	snap *snapshotState
}

// snapshotState is a presence or cache subscription's snapshot: the member it joined as (static), and
// the versions its snapshot reflects, guarded by ch.mu: the member list it was sent and the cached
// event it was replayed. Frames that carry older or equal versions are skipped for it.
type snapshotState struct {
	member         pusher.Member
	roster, cached uint64
}

// member is the presence member the subscription joined as; empty on other channels.
func (sub *subscription) member() pusher.Member {
	if sub.snap == nil {
		return pusher.Member{}
	}
	return sub.snap.member
}

// wants reports whether m is for this subscriber: not the excluded socket, and not something its
// snapshot already reflects. ch.mu is held.
func (sub *subscription) wants(m *Message) bool {
	if sub.conn.id == m.Except {
		return false
	}
	if s := sub.snap; s != nil {
		return (m.Roster == 0 || s.roster < m.Roster) && (m.Cached == 0 || s.cached < m.Cached)
	}
	return true
}

// pendingFrames collects the frames of a subscription whose snapshot is being read. Fan-outs append
// under the channel's read lock, so they share mu; activate drains it under the write lock.
type pendingFrames struct {
	mu       sync.Mutex
	frames   []Message
	bytes    int
	overflow bool // more than the connection's queue bound arrived: it will be cut off as slow
}

func (p *pendingFrames) add(m *Message, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.overflow {
		return
	}
	if p.bytes += len(m.Frame) + frameOverhead; p.bytes > limit {
		p.overflow, p.frames = true, nil
		return
	}
	p.frames = append(p.frames, *m)
}

func newHub() *hub {
	h := &hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[channelKey]*channel)
	}
	return h
}

func (h *hub) shard(k channelKey) *hubShard { return &h.shards[h.stripe(k)] }

// stripe spreads channel keys over hubShards stripes.
func (h *hub) stripe(k channelKey) int {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteString(k.app)
	mh.WriteByte(0)
	mh.WriteString(k.name)
	return int(mh.Sum64() % hubShards)
}

// add subscribes c to the channel. With pending set, the subscription first collects what is fanned
// out to it while its snapshot is read, until activate; otherwise first (when not nil) is sent to it
// before any frame fanned out afterwards. member is the presence member of a pending subscription.
func (h *hub) add(k channelKey, c *Conn, member pusher.Member, pending bool, first []byte) *subscription {
	s := h.shard(k)
	s.mu.Lock()
	ch := s.channels[k]
	if ch == nil {
		ch = &channel{key: k}
		s.channels[k] = ch
	}
	ch.mu.Lock()
	s.mu.Unlock()
	sub := &subscription{conn: c, ch: ch, index: int32(len(ch.subs))}
	ch.subs = append(ch.subs, sub)
	if pending {
		sub.pending = &pendingFrames{}
		sub.snap = &snapshotState{member: member}
	} else if first != nil {
		c.deliver(first, true)
	}
	ch.mu.Unlock()
	return sub
}

// suspend makes an active subscription collect its frames again, while a new snapshot is read.
func (h *hub) suspend(sub *subscription) {
	sub.ch.mu.Lock()
	sub.pending = &pendingFrames{}
	sub.ch.mu.Unlock()
}

// activate ends a subscription's pending state: it sends the snapshot frames, records the versions
// they reflect, then sends the frames collected meanwhile that the snapshot does not already
// reflect, all before any later fan-out. A connection that collected more than its queue bound is
// cut off instead.
func (h *hub) activate(sub *subscription, snapshot [][]byte, roster, cached uint64) {
	ch := sub.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	p := sub.pending
	sub.pending = nil
	if sub.snap != nil {
		sub.snap.roster, sub.snap.cached = roster, cached
	}
	c := sub.conn
	if p != nil && p.overflow {
		c.cutOff()
		return
	}
	for _, f := range snapshot {
		c.deliver(f, true)
	}
	if p != nil {
		for i := range p.frames {
			if sub.wants(&p.frames[i]) {
				c.deliver(p.frames[i].Frame, true)
			}
		}
	}
}

// remove unsubscribes sub.
func (h *hub) remove(sub *subscription) {
	ch := sub.ch
	s := h.shard(ch.key)
	s.mu.Lock()
	ch.mu.Lock()
	n := len(ch.subs) - 1
	moved := ch.subs[n]
	ch.subs[sub.index] = moved
	moved.index = sub.index
	ch.subs[n] = nil
	ch.subs = ch.subs[:n]
	sub.pending = nil
	if n == 0 {
		delete(s.channels, ch.key)
	} else if cap(ch.subs) > 64 && n < cap(ch.subs)/4 {
		ch.subs = append([]*subscription(nil), ch.subs...)
	}
	ch.mu.Unlock()
	s.mu.Unlock()
}

// lookup returns the channel, or nil when it has no local subscriber.
func (h *hub) lookup(k channelKey) *channel {
	s := h.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.channels[k]
}

// fanout hands m's frame to every local subscriber of its channel that wants it (see wants), and
// reports how many took it. It never blocks on a subscriber.
func (h *hub) fanout(m *Message) int {
	ch := h.lookup(channelKey{m.AppID, m.Channel})
	if ch == nil {
		return 0
	}
	// A subscription count is a snapshot: of two announced close together only the later one may be
	// delivered last, so counts are checked and fanned out under the write lock.
	if m.Count != 0 {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if m.Count <= ch.lastCount {
			return 0
		}
		ch.lastCount = m.Count
	} else {
		ch.mu.RLock()
		defer ch.mu.RUnlock()
	}
	// A publish that comes before the previous one's writes could be done (a write per subscriber) is
	// part of a burst: its frames queue, so that each client's writer gathers what queued into one
	// socket write. Otherwise each is written at once, which saves a goroutine per delivery.
	now := monotonic()
	direct := now-ch.lastFanout.Swap(now) > int64(len(ch.subs))*writeCost
	n := 0
	for _, sub := range ch.subs {
		switch {
		case !sub.wants(m):
		case sub.pending != nil:
			sub.pending.add(m, sub.conn.srv.cfg.MaxQueueBytes)
		case sub.conn.deliver(m.Frame, direct):
			n++
		}
	}
	return n
}

// each calls fn for every local subscriber of the channel, under the channel's read lock: fn must
// not block.
func (h *hub) each(k channelKey, fn func(*Conn)) {
	ch := h.lookup(k)
	if ch == nil {
		return
	}
	ch.mu.RLock()
	for _, sub := range ch.subs {
		fn(sub.conn)
	}
	ch.mu.RUnlock()
}

// count calls fn with the app and subscriber count of every channel but Herald's internal ones, a
// shard at a time; fn must not call into the hub.
func (h *hub) count(fn func(appID string, subs int)) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for k, ch := range sh.channels {
			if isInternal(k.name) {
				continue
			}
			ch.mu.RLock()
			n := len(ch.subs)
			ch.mu.RUnlock()
			fn(k.app, n)
		}
		sh.mu.RUnlock()
	}
}
