package redis

import (
	"context"
	"errors"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/channels"
)

// inbox hands the messages the pub/sub connection receives to delivery workers. The connection's
// reader must never wait on a fan-out: while it waits it cannot read Redis's answer to its keepalive
// PING either, so a burst to a large channel would get the connection timed out, and every message
// Redis sent meanwhile lost. One worker per shard, by channel, keeps each channel's messages in order.
//
// What waits is bounded by bytes: a node that cannot deliver as fast as the cluster publishes drops
// what comes past the bound, counts and logs it, and reports itself unready for a while, rather
// than grow without limit.
type inbox struct {
	deliver func(channels.Message)
	shards  []inboxShard
	seed    maphash.Seed
	max     int64 // bytes

	queued      atomic.Int64 // bytes waiting, every shard
	dropped     atomic.Int64 // messages dropped past the bound, ever
	lastDropped atomic.Int64 // unix nanoseconds of the last drop
	lastLogged  atomic.Int64 // unix nanoseconds of the last drop logged
}

type inboxShard struct {
	mu    sync.Mutex
	queue []channels.Message // guarded by mu
	wake  chan struct{}      // one token: the worker has something to do
}

// maxInboxBytes bounds a node's messages received and not yet delivered.
const maxInboxBytes = 64 << 20

// inboxUnhealthyFor is how long a node that dropped messages reports itself unready.
const inboxUnhealthyFor = 10 * time.Second

func newInbox(deliver func(channels.Message), maxBytes int64) *inbox {
	n := max(2, runtime.GOMAXPROCS(0))
	in := &inbox{deliver: deliver, shards: make([]inboxShard, n), seed: maphash.MakeSeed(), max: maxBytes}
	for i := range in.shards {
		in.shards[i].wake = make(chan struct{}, 1)
	}
	return in
}

// run starts the workers; they stop with ctx.
func (in *inbox) run(ctx context.Context, wg *sync.WaitGroup) {
	for i := range in.shards {
		wg.Add(1)
		go in.work(ctx, &in.shards[i], wg)
	}
}

// push queues m for delivery, or drops it past the bound and reports whether it did.
func (in *inbox) push(m channels.Message) (dropped bool) {
	size := messageBytes(&m)
	if in.queued.Add(size) > in.max {
		in.queued.Add(-size)
		in.dropped.Add(1)
		in.lastDropped.Store(time.Now().UnixNano())
		return true
	}
	sh := &in.shards[maphash.String(in.seed, m.AppID+"\n"+m.Channel)%uint64(len(in.shards))]
	sh.mu.Lock()
	sh.queue = append(sh.queue, m)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default: // awake already
	}
	return false
}

func (in *inbox) work(ctx context.Context, sh *inboxShard, wg *sync.WaitGroup) {
	defer wg.Done()
	var batch []channels.Message
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.wake:
		}
		sh.mu.Lock()
		batch, sh.queue = sh.queue, batch[:0]
		sh.mu.Unlock()
		for i := range batch {
			in.deliver(batch[i])
			in.queued.Add(-messageBytes(&batch[i]))
			batch[i] = channels.Message{} // let the frame go
		}
	}
}

func messageBytes(m *channels.Message) int64 {
	return int64(len(m.Frame) + len(m.Channel) + len(m.AppID) + len(m.Except))
}

// logDrop reports whether a drop is to be logged now: at most one line per inboxUnhealthyFor.
func (in *inbox) logDrop() bool {
	now, last := time.Now().UnixNano(), in.lastLogged.Load()
	return now-last >= int64(inboxUnhealthyFor) && in.lastLogged.CompareAndSwap(last, now)
}

var errInboxFull = errors.New("redis: this node could not deliver as fast as the cluster published, and dropped messages")

// healthy reports an error for a while after a drop.
func (in *inbox) healthy() error {
	if last := in.lastDropped.Load(); last != 0 && time.Since(time.Unix(0, last)) < inboxUnhealthyFor {
		return errInboxFull
	}
	return nil
}
