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

// hub is this node's index of channels and their local subscribers. It knows nothing of apps, auth or
// presence: it adds, removes and fans out, each under the smallest lock that is correct.
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
// guards subs and every subscription's index, so a fan-out holds only mu, as a reader.
type channel struct {
	key  channelKey
	mu   sync.RWMutex
	subs []*subscription

	// Guarded by mu: when this node last announced the subscription count (and a pending trailing
	// announcement), and when it last reported a cache miss, so neither floods.
	countSentAt int64
	countTimer  *time.Timer
	missSentAt  int64

	// lastFanout is when the channel's last fan-out started (see fanout).
	lastFanout atomic.Int64
}

// writeCost is about twice what one socket write of a small frame costs the server (receiving side
// included, on loopback). It only tells a burst of publishes from a trickle (see fanout): with less
// margin, writing at once could slow a burst until it no longer looked like one.
const writeCost = int64(10 * time.Microsecond)

// subscription is one socket on one channel. It is owned by the socket's read loop except for index,
// which belongs to the channel.
type subscription struct {
	conn   *Conn
	ch     *channel
	index  int           // position in ch.subs, guarded by ch.mu
	member pusher.Member // presence channels only
	roster uint64        // presence version of the member list sent to the socket, guarded by ch.mu
}

func newHub() *hub {
	h := &hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[channelKey]*channel)
	}
	return h
}

func (h *hub) shard(k channelKey) *hubShard { return &h.shards[h.stripe(k)] }

// stripe spreads channel keys over hubShards stripes: the hub's shards, and the server's roster and
// count locks.
func (h *hub) stripe(k channelKey) int {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteString(k.app)
	mh.WriteByte(0)
	mh.WriteString(k.name)
	return int(mh.Sum64() % hubShards)
}

// add subscribes c to the channel and reports whether it is the channel's first local subscriber.
// onAdded runs with the channel locked, after the subscription is visible: whatever it sends reaches
// the socket before any event fanned out to the channel afterwards (subscription_succeeded first).
func (h *hub) add(k channelKey, c *Conn, member pusher.Member, onAdded func(*subscription)) (sub *subscription, first bool) {
	s := h.shard(k)
	s.mu.Lock()
	ch := s.channels[k]
	if ch == nil {
		ch = &channel{key: k}
		s.channels[k] = ch
		first = true
	}
	ch.mu.Lock()
	s.mu.Unlock()
	sub = &subscription{conn: c, ch: ch, index: len(ch.subs), member: member}
	ch.subs = append(ch.subs, sub)
	if onAdded != nil {
		onAdded(sub)
	}
	ch.mu.Unlock()
	return sub, first
}

// remove unsubscribes sub and reports whether the channel has no local subscriber left.
func (h *hub) remove(sub *subscription) (last bool) {
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
	if n == 0 {
		delete(s.channels, ch.key)
		last = true
	} else if cap(ch.subs) > 64 && n < cap(ch.subs)/4 {
		ch.subs = append([]*subscription(nil), ch.subs...)
	}
	ch.mu.Unlock()
	s.mu.Unlock()
	return last
}

// lookup returns the channel, or nil when it has no local subscriber.
func (h *hub) lookup(k channelKey) *channel {
	s := h.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.channels[k]
}

// fanout hands m's frame to every local subscriber of its channel except m.Except and those whose
// member list already reflects m.Roster. It never blocks on a subscriber.
func (h *hub) fanout(m Message) int {
	ch := h.lookup(channelKey{m.AppID, m.Channel})
	if ch == nil {
		return 0
	}
	// A publish that comes before the previous one's writes could be done (a write per subscriber) is
	// part of a burst: queue its frames, so that each client's writer gathers what queued into one
	// socket write. Otherwise write each at once, which saves a goroutine per delivery.
	now := monotonic()
	ch.mu.RLock()
	direct := now-ch.lastFanout.Swap(now) > int64(len(ch.subs))*writeCost
	n := 0
	for _, sub := range ch.subs {
		if c := sub.conn; c.id != m.Except && (m.Roster == 0 || sub.roster < m.Roster) &&
			c.sendFrame(outFrame{op: opText, data: m.Frame}, direct) {
			n++
		}
	}
	ch.mu.RUnlock()
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

// count returns the number of local subscriptions of a channel.
func (h *hub) count(k channelKey) int {
	ch := h.lookup(k)
	if ch == nil {
		return 0
	}
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return len(ch.subs)
}

// channels calls fn with the subscription count of every occupied channel of an app.
func (h *hub) channels(app string, fn func(name string, subscriptions int)) {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for k, ch := range s.channels {
			if k.app != app {
				continue
			}
			ch.mu.RLock()
			n := len(ch.subs)
			ch.mu.RUnlock()
			fn(k.name, n)
		}
		s.mu.RUnlock()
	}
}
