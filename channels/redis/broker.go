package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/channels"
)

// Broker carries messages between nodes over Redis pub/sub, one pub/sub channel per Pusher channel:
// a node subscribes only to the channels it has local subscribers on, so it receives only their
// traffic, and a publish is one PUBLISH of the frame encoded once, whatever the subscriber count.
//
// Its subscriptions live on one dedicated connection. When that connection breaks, the broker
// reconnects with back-off and subscribes again to every channel still listened to; what was
// published meanwhile is not replayed (pub/sub has no history), and Healthy reports the gap.
// Healthy also proves the path end to end: a probe published every second must come back.
type Broker struct {
	cl    *Cluster
	inbox *inbox // set by Start, before any subscription

	// subscribing serialises SUBSCRIBE and UNSUBSCRIBE with the changes of listening they follow, so
	// that the connection's subscriptions always match it; it also guards conn.
	subscribing sync.Mutex
	conn        rueidis.DedicatedClient // nil while reconnecting

	mu        sync.RWMutex
	listening map[string]*listener // by pub/sub channel name

	lastProbe  atomic.Int64 // unix nanoseconds the last probe came back
	probeSent  atomic.Int64 // unix nanoseconds the last probe was published
	probeRTT   atomic.Int64 // nanoseconds the last probe took to come back: the pub/sub path's lag
	connected  atomic.Bool
	reconnects atomic.Int64 // subscriber connections made after the first
	pubErrors  atomic.Int64 // publishes Redis did not take
}

// listener is one pub/sub channel the node listens to, counted per local subscription.
type listener struct {
	app, channel string
	n            int // guarded by Broker.mu
}

var errDeaf = errors.New("redis: not subscribed to Redis pub/sub (reconnecting)")

func newBroker(cl *Cluster) *Broker {
	return &Broker{cl: cl, listening: make(map[string]*listener)}
}

// Start implements channels.Broker: it subscribes and keeps the subscriptions up until Close.
func (b *Broker) Start(deliver func(channels.Message)) error {
	b.inbox = newInbox(deliver, maxInboxBytes)
	b.inbox.run(b.cl.ctx, &b.cl.wg)
	ready := make(chan error, 1)
	go b.run(ready)
	select {
	case err := <-ready:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("redis: pub/sub did not connect within 10s")
	}
}

// Close implements channels.Broker; the cluster closes the connections.
func (b *Broker) Close() error { return nil }

// Publish implements channels.Broker with one PUBLISH.
func (b *Broker) Publish(ctx context.Context, m channels.Message) error {
	ctx, cancel := context.WithTimeout(ctx, b.cl.cfg.CallTimeout)
	defer cancel()
	env := appendEnvelope(make([]byte, 0, len(m.Frame)+48), &m)
	cmd := b.cl.client.B().Publish().Channel(b.cl.keys.pubsub(m.AppID, m.Channel)).Message(rueidis.BinaryString(env)).Build()
	err := b.cl.client.Do(ctx, cmd).Error()
	if err != nil {
		b.pubErrors.Add(1)
	}
	return err
}

// Listen implements channels.Broker. The first Listen of a channel subscribes to it, and returns once
// Redis confirmed; the others only count.
func (b *Broker) Listen(ctx context.Context, appID, channel string) error {
	name := b.cl.keys.pubsub(appID, channel)
	if b.count(name, 1) {
		return nil
	}
	b.subscribing.Lock()
	defer b.subscribing.Unlock()
	if b.count(name, 1) { // subscribed while this call waited
		return nil
	}
	if b.conn == nil {
		return errDeaf
	}
	l := &listener{app: appID, channel: channel}
	b.mu.Lock()
	b.listening[name] = l // before SUBSCRIBE, so that the first message finds it
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.cl.cfg.CallTimeout)
	defer cancel()
	err := b.conn.Do(ctx, b.conn.B().Subscribe().Channel(name).Build()).Error()
	b.mu.Lock()
	if err != nil {
		delete(b.listening, name)
	} else {
		l.n++
	}
	b.mu.Unlock()
	return err
}

// count adds delta to a channel already listened to, and reports whether there was one.
func (b *Broker) count(name string, delta int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.listening[name]; l != nil && l.n > 0 {
		l.n += delta
		return true
	}
	return false
}

// Unlisten implements channels.Broker; the last one unsubscribes.
func (b *Broker) Unlisten(appID, channel string) {
	name := b.cl.keys.pubsub(appID, channel)
	b.mu.Lock()
	l := b.listening[name]
	if l == nil {
		b.mu.Unlock()
		return
	}
	if l.n--; l.n > 0 {
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.subscribing.Lock()
	defer b.subscribing.Unlock()
	b.mu.Lock()
	if l.n > 0 || b.listening[name] != l { // listened to again meanwhile
		b.mu.Unlock()
		return
	}
	delete(b.listening, name)
	b.mu.Unlock()
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(b.cl.ctx, b.cl.cfg.CallTimeout)
		defer cancel()
		// A failure leaves an extra subscription, whose messages find no listener and are dropped;
		// the next reconnect does not renew it.
		_ = b.conn.Do(ctx, b.conn.B().Unsubscribe().Channel(name).Build()).Error()
	}
}

// Healthy reports whether this node hears the cluster: its subscriber connection is up and the last
// probe through it came back within the last three seconds. /ready reads it.
func (b *Broker) Healthy() error {
	if !b.connected.Load() {
		return errDeaf
	}
	if time.Since(time.Unix(0, b.lastProbe.Load())) > 3*time.Second {
		return errors.New("redis: pub/sub probe did not come back within 3s")
	}
	return b.inbox.healthy()
}

func (b *Broker) onMessage(m rueidis.PubSubMessage) {
	if m.Channel == b.cl.keys.probe(b.cl.cfg.NodeID) {
		now := time.Now().UnixNano()
		b.lastProbe.Store(now)
		b.probeRTT.Store(now - b.probeSent.Load())
		return
	}
	b.mu.RLock()
	l := b.listening[m.Channel]
	b.mu.RUnlock()
	if l == nil {
		return // unsubscribed meanwhile
	}
	msg := channels.Message{AppID: l.app, Channel: l.channel}
	if err := parseEnvelope([]byte(m.Message), &msg); err != nil {
		b.cl.log.Error().Str("channel", m.Channel).Msg("dropped a malformed message from Redis pub/sub")
		return
	}
	if b.inbox.push(msg) && b.inbox.logDrop() {
		b.cl.log.Error().Int64("dropped_total", b.inbox.dropped.Load()).Int("max_bytes", maxInboxBytes).
			Msg("redis pub/sub: messages dropped, this node cannot deliver as fast as the cluster publishes; /ready answers 503 for 10 s")
	}
}

// run keeps the subscriber connection up: it connects, subscribes to the probe and to every channel
// listened to, and when the connection breaks does it again, with back-off. ready receives the first
// connection's outcome.
func (b *Broker) run(ready chan<- error) {
	backoff := newBackoff()
	first := true
	probes := time.NewTicker(time.Second)
	defer probes.Stop()
	for b.cl.ctx.Err() == nil {
		wait, err := b.connect()
		if ready != nil {
			ready <- err
			ready = nil
		}
		if err != nil {
			b.cl.log.Error().Err(err).Msg("redis pub/sub: cannot subscribe, retrying")
			backoff.wait(b.cl.ctx)
			continue
		}
		backoff.reset()
		if !first {
			b.reconnects.Add(1)
		}
		first = false
		b.cl.log.Info().Msg("redis pub/sub: subscribed")
		b.probe()
	live:
		for {
			select {
			case err = <-wait:
				break live
			case <-probes.C:
				b.probe()
			case <-b.cl.ctx.Done():
				break live
			}
		}
		b.connected.Store(false)
		b.subscribing.Lock()
		if b.conn != nil {
			b.conn.Close()
			b.conn = nil
		}
		b.subscribing.Unlock()
		if b.cl.ctx.Err() == nil {
			b.cl.log.Error().Err(err).Msg("redis pub/sub: connection lost, reconnecting; messages published meanwhile are not delivered to this node")
			backoff.wait(b.cl.ctx)
		}
	}
}

// connect opens a subscriber connection and subscribes it to everything listened to.
func (b *Broker) connect() (<-chan error, error) {
	conn, cancel := b.cl.client.Dedicate()
	wait := conn.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: b.onMessage})
	b.subscribing.Lock()
	defer b.subscribing.Unlock()
	b.mu.RLock()
	names := make([]string, 0, len(b.listening)+1)
	names = append(names, b.cl.keys.probe(b.cl.cfg.NodeID))
	for name := range b.listening {
		names = append(names, name)
	}
	b.mu.RUnlock()
	for len(names) > 0 {
		n := min(len(names), 500)
		ctx, done := context.WithTimeout(b.cl.ctx, b.cl.cfg.CallTimeout)
		err := conn.Do(ctx, conn.B().Subscribe().Channel(names[:n]...).Build()).Error()
		done()
		if err != nil {
			cancel()
			return nil, err
		}
		names = names[n:]
	}
	b.conn = conn
	b.connected.Store(true)
	return wait, nil
}

// probe publishes to this node's own probe channel; onMessage records its return.
func (b *Broker) probe() {
	ctx, cancel := context.WithTimeout(b.cl.ctx, b.cl.cfg.CallTimeout)
	defer cancel()
	b.probeSent.Store(time.Now().UnixNano())
	_ = b.cl.client.Do(ctx, b.cl.client.B().Publish().Channel(b.cl.keys.probe(b.cl.cfg.NodeID)).Message("p").Build()).Error()
}
