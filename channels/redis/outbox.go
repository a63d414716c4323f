package redis

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/pusher"
)

// Webhooks is where the outbox's events go: the node's webhook dispatcher. done is called once the
// event is delivered or given up on for good; the entry is acknowledged then, so an event handed to a
// node that dies before delivering it is delivered by the next holder of the lease.
type Webhooks interface {
	Deliver(appID string, e pusher.WebhookEvent, done func())
}

const (
	outboxGroup = "webhooks"
	// maxInFlight bounds the outbox entries handed to the dispatcher and not yet acknowledged: past
	// it the holder stops reading, and the backlog waits in Redis rather than in this process.
	maxInFlight = 1000
	readBatch   = 200
)

// deliverOutbox runs on every node, but only the holder of the cluster's webhook lease reads the
// outboxes, so each endpoint receives its events in order from one node at a time. The holder also
// moves due removals from the pending sets to the outboxes (due.lua). When the holder dies its
// lease expires, the next node takes it and claims what the old holder read but never
// acknowledged: delivery is at least once. It claims only entries idle for a node timeout, and
// claims again every node timeout, so that a holder that lost the lease for a moment while it
// was still delivering (a slow Redis) finishes its own entries rather than see them sent twice.
//
// Once reading stops (Leave), a holder keeps the lease until its dispatcher is done with what it
// was handed, then lets it go; Close ends the loop whatever is left.
func (cl *Cluster) deliverOutbox(reading context.Context) {
	defer close(cl.outboxDone)
	holding := false
	var claimed time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for cl.ctx.Err() == nil {
		if reading.Err() != nil && !holding {
			return // leaving, and not the holder: it must not take the lease now
		}
		apps := *cl.outboxApps.Load()
		callCtx, cancel := cl.call(cl.ctx)
		got, err := cl.run(callCtx, cl.scripts.lease, cl.cfg.NodeID, itoa(cl.cfg.NodeTimeout.Milliseconds())).AsInt64()
		cancel()
		switch {
		case err != nil || got == 0:
			holding = false
		case reading.Err() != nil:
			if cl.inFlightCount() == 0 {
				cl.releaseLease()
				return
			}
		case !holding:
			holding = true
			cl.appsChanged.Store(false)
			cl.log.Info().Msg("redis: this node delivers the cluster's webhooks")
			cl.claim(apps)
			claimed = time.Now()
		case cl.appsChanged.Swap(false):
			cl.claim(apps) // the apps were reloaded: new ones need their consumer groups
			claimed = time.Now()
		case time.Since(claimed) >= cl.cfg.NodeTimeout:
			cl.claimIdle(apps)
			claimed = time.Now()
		}
		if !holding || reading.Err() != nil || cl.inFlightCount() >= maxInFlight {
			select {
			case <-tick.C:
			case <-cl.ctx.Done():
			}
			continue
		}
		for _, app := range apps {
			callCtx, cancel := cl.call(cl.ctx)
			_ = cl.run(callCtx, cl.scripts.due, app, "500").Error()
			cancel()
		}
		cl.read(apps, ">", 250*time.Millisecond)
	}
	if holding {
		cl.releaseLease()
	}
}

// releaseLease hands the lease on at once, if this node still holds it.
func (cl *Cluster) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = cl.client.Do(ctx, cl.client.B().Eval().Script(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`).
		Numkeys(1).Key(cl.keys.global("lease")).Arg(cl.cfg.NodeID).Build()).Error()
}

// claim makes the outboxes' consumer groups, then delivers what this node's consumer read but never
// acknowledged (a process of the same node id before a restart) and what other holders left.
func (cl *Cluster) claim(apps []string) {
	c := cl.client
	for _, app := range apps {
		ctx, cancel := cl.call(cl.ctx)
		err := c.Do(ctx, c.B().XgroupCreate().Key(cl.keys.app(app, "outbox")).Group(outboxGroup).Id("0").Mkstream().Build()).Error()
		cancel()
		if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
			cl.log.Error().Err(err).Str("app_id", app).Msg("redis: cannot create the webhook outbox's consumer group")
		}
	}
	// Pending entries of this consumer name (a restarted node of the same id) come back with "0".
	cl.read(apps, "0", 0)
	cl.claimIdle(apps)
}

// claimIdle takes over and delivers the entries read and not acknowledged for at least a node
// timeout: their reader died, or (its own, still in flight) is skipped by handOver.
func (cl *Cluster) claimIdle(apps []string) {
	c := cl.client
	for _, app := range apps {
		stream, start := cl.keys.app(app, "outbox"), "0-0"
		for {
			ctx, cancel := cl.call(cl.ctx)
			res, err := c.Do(ctx, c.B().Xautoclaim().Key(stream).Group(outboxGroup).Consumer(cl.cfg.NodeID).MinIdleTime(itoa(cl.cfg.NodeTimeout.Milliseconds())).Start(start).Count(100).Build()).ToArray()
			cancel()
			if err != nil || len(res) < 2 {
				break
			}
			entries, _ := res[1].AsXRange()
			for _, e := range entries {
				cl.handOver(app, e)
			}
			next, _ := res[0].ToString()
			if next == "0-0" || len(entries) == 0 {
				break
			}
			start = next
		}
	}
}

// read reads the outboxes once from id (">" for new entries), waiting up to block for one.
func (cl *Cluster) read(apps []string, id string, block time.Duration) {
	c := cl.client
	keys := make([]string, len(apps))
	ids := make([]string, len(apps))
	for i, app := range apps {
		keys[i], ids[i] = cl.keys.app(app, "outbox"), id
	}
	cmd := c.B().Xreadgroup().Group(outboxGroup, cl.cfg.NodeID).Count(max(1, min(readBatch, maxInFlight-cl.inFlightCount())))
	var built rueidis.Completed
	if block > 0 {
		built = cmd.Block(block.Milliseconds()).Streams().Key(keys...).Id(ids...).Build()
	} else {
		built = cmd.Streams().Key(keys...).Id(ids...).Build()
	}
	ctx, cancel := context.WithTimeout(cl.ctx, cl.cfg.CallTimeout+block)
	defer cancel()
	streams, err := c.Do(ctx, built).AsXRead()
	if err != nil {
		if !rueidis.IsRedisNil(err) && cl.ctx.Err() == nil {
			if strings.Contains(err.Error(), "NOGROUP") { // Redis lost the groups: make them again
				cl.claim(apps)
				return
			}
			cl.log.Error().Err(err).Msg("redis: reading the webhook outbox failed")
		}
		return
	}
	for i, app := range apps {
		for _, e := range streams[keys[i]] {
			cl.handOver(app, e)
		}
	}
}

var outboxEvents = map[string]string{
	"o": pusher.WebhookChannelOccupied, "v": pusher.WebhookChannelVacated,
	"a": pusher.WebhookMemberAdded, "r": pusher.WebhookMemberRemoved,
	"n": pusher.WebhookSubscriptionCount,
}

// handOver gives one outbox entry to the dispatcher, acknowledging it once the dispatcher is done;
// an entry the dispatcher has already is skipped.
//
// An entry whose acknowledgement failed (Redis unreachable for a moment) is remembered as
// delivered: when a claim brings it back it is acknowledged again, not sent again.
func (cl *Cluster) handOver(app string, e rueidis.XRangeEntry) {
	stream, id := cl.keys.app(app, "outbox"), e.ID
	key := app + "\n" + id
	cl.inFlightMu.Lock()
	_, dup := cl.inFlight[key]
	_, delivered := cl.delivered[key]
	delete(cl.delivered, key)
	if !dup && !delivered {
		cl.inFlight[key] = struct{}{}
	}
	cl.inFlightMu.Unlock()
	if dup {
		return
	}
	ack := func() {
		// Not cl.ctx: the dispatcher finishes its last events after Leave, before Close.
		ctx, cancel := context.WithTimeout(context.Background(), cl.cfg.CallTimeout)
		defer cancel()
		err := cl.client.Do(ctx, cl.client.B().Xack().Key(stream).Group(outboxGroup).Id(id).Build()).Error()
		cl.inFlightMu.Lock()
		delete(cl.inFlight, key)
		if err != nil && len(cl.delivered) < maxInFlight {
			cl.delivered[key] = struct{}{}
		}
		cl.inFlightMu.Unlock()
		if err != nil && cl.ctx.Err() == nil {
			cl.log.Error().Err(err).Str("app_id", app).Str("entry", id).Msg("redis: cannot acknowledge a delivered webhook; acknowledging it again when it is claimed")
		}
	}
	if delivered {
		go ack()
		return
	}
	name := outboxEvents[e.FieldValues["k"]]
	if name == "" {
		ack()
		return
	}
	ev := pusher.WebhookEvent{Name: name, Channel: e.FieldValues["c"], UserID: e.FieldValues["u"]}
	if name == pusher.WebhookSubscriptionCount {
		n, err := strconv.Atoi(e.FieldValues["n"])
		if err != nil {
			ack()
			return
		}
		ev.SubscriptionCount = &n
	}
	cl.hooks.Deliver(app, ev, ack)
}

func (cl *Cluster) inFlightCount() int64 {
	cl.inFlightMu.Lock()
	defer cl.inFlightMu.Unlock()
	return int64(len(cl.inFlight))
}
