package redis

import (
	"context"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/pusher"
)

// Local is what the cluster needs from the node's own server: each node is the source of truth for
// its own sockets, and Redis holds the union of what the nodes tell it.
type Local interface {
	// Records calls subs for every subscription the node holds that the channel store records, users
	// for every signed-in socket, and conns for every app's connection count.
	Records(subs func(channels.Subscription), users func(appID, userID, socketID string), conns func(appID string, n int))
	// Reconnect closes every connection with 4200, so that its client reconnects and joins again.
	Reconnect()
	// Offline tells a user's watchers it went offline, unless it is back by the end of the grace.
	Offline(appID, userID string)
}

// liveness beats every sixth of the node timeout. Each beat tells the node where it stands (see
// heartbeat.lua): it reaps the nodes gone silent, closes its sockets when it was evicted itself, and
// re-records its sockets when Redis lost the cluster's data.
func (cl *Cluster) liveness() {
	defer cl.wg.Done()
	every := max(cl.cfg.NodeTimeout/6, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	healthy := true
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := cl.call(cl.ctx)
		reg := cl.reg.Load()
		vals, err := cl.run(ctx, cl.scripts.heartbeat, cl.cfg.NodeID, reg.token, reg.epoch,
			itoa(cl.cfg.NodeTimeout.Milliseconds())).ToArray()
		cancel()
		if cl.leaving.Load() {
			return // removed itself: whatever the beat says, the node is on its way out
		}
		if err != nil || len(vals) == 0 {
			if healthy {
				cl.log.Error().Err(errOr(err)).Msg("redis: heartbeat failed; this node's state is re-checked once Redis answers")
			}
			healthy = false
			continue
		}
		if !healthy {
			cl.log.Info().Msg("redis: heartbeat restored")
			healthy = true
			cl.healthySince.Store(time.Now().UnixNano())
		}
		status, _ := vals[0].ToString()
		switch status {
		case "ok":
			if time.Since(time.Unix(0, cl.healthySince.Load())) < cl.cfg.NodeTimeout {
				continue // others may not have had their chance to beat since Redis came back
			}
			for _, v := range vals[1:] {
				if node, _ := v.ToString(); node != cl.cfg.NodeID {
					cl.reap(node)
				}
			}
		case "fenced":
			cl.log.Error().Msg("redis: this node was declared dead and evicted (paused or partitioned for longer than the node timeout); closing its connections with 4200 so its clients join again")
			cl.local.Reconnect()
			cl.departed.clear() // the eviction removed those records, and reported their departures
			cl.reregister()
		case "reset":
			cl.log.Warn().Msg("redis: the cluster's data is gone (Redis restarted empty or failed over); re-recording this node's sockets")
			cl.reregister()
			cl.restore()
		}
	}
}

func (cl *Cluster) reregister() {
	ctx, cancel := context.WithTimeout(cl.ctx, 10*time.Second)
	defer cancel()
	if err := cl.register(ctx); err != nil {
		cl.log.Error().Err(err).Msg("redis: cannot register this node again; retrying at the next heartbeat")
	}
}

// reap evicts a dead node. Every survivor may try at once: evict.lua takes each record once.
func (cl *Cluster) reap(node string) {
	ctx, cancel := context.WithTimeout(cl.ctx, 30*time.Second)
	defer cancel()
	n, err := cl.evict(ctx, node)
	if err != nil {
		cl.log.Error().Err(err).Str("dead_node", node).Msg("redis: evicting a dead node failed; retrying at the next heartbeat")
		return
	}
	cl.log.Warn().Str("dead_node", node).Int("records", n).Dur("node_timeout", cl.cfg.NodeTimeout).Msg("redis: evicted a node that stopped beating")
}

// restore re-records everything this node holds, quietly: nothing changed for the clients, so
// nothing is announced and no webhook is due. A subscription that ends while it runs may have left
// before it was re-recorded; a second look at what the node holds removes those again, so none is
// left behind.
func (cl *Cluster) restore() {
	ctx, cancel := context.WithTimeout(cl.ctx, time.Minute)
	defer cancel()
	before := cl.holdings()
	failed := 0
	for s := range before.subs {
		if _, err := cl.join(ctx, before.sub(s), true); err != nil {
			failed++
		}
	}
	for u := range before.users {
		if _, err := (Users{cl}).Connect(ctx, u.app, u.user, u.socket); err != nil {
			failed++
		}
	}
	for app, n := range before.conns {
		k := cl.keys.app(app, "conns")
		err := cl.client.Do(ctx, cl.client.B().Hset().Key(k).FieldValue().FieldValue(cl.cfg.NodeID, itoa(int64(n))).Build()).Error()
		if err == nil {
			err = cl.client.Do(ctx, cl.client.B().Sadd().Key(cl.keys.global("nodeapps:"+cl.cfg.NodeID)).Member(app).Build()).Error()
		}
		if err != nil {
			failed++
		}
	}
	after := cl.holdings()
	for s := range before.subs {
		if _, held := after.subs[s]; !held {
			_, _ = cl.leave(ctx, s.app, s.channel, s.socket, true)
		}
	}
	for u := range before.users {
		if _, held := after.users[u]; !held {
			_, _ = (Users{cl}).Disconnect(ctx, u.app, u.user, u.socket)
		}
	}
	ev := cl.log.Info()
	if failed > 0 {
		ev = cl.log.Error().Int("failed", failed)
	}
	ev.Int("subscriptions", len(before.subs)).Int("signed_in", len(before.users)).Msg("redis: re-recorded this node's sockets")
}

// holdings is a snapshot of what the node's server holds (Local.Records), as sets.
type holdings struct {
	subs  map[subKey]*pusher.Member
	users map[signin]struct{}
	conns map[string]int
}

type subKey struct{ app, channel, socket string }
type signin struct{ app, user, socket string }

func (h holdings) sub(k subKey) channels.Subscription {
	return channels.Subscription{AppID: k.app, Channel: k.channel, SocketID: k.socket, Member: h.subs[k]}
}

func (cl *Cluster) holdings() holdings {
	h := holdings{subs: map[subKey]*pusher.Member{}, users: map[signin]struct{}{}, conns: map[string]int{}}
	cl.local.Records(
		func(s channels.Subscription) { h.subs[subKey{s.AppID, s.Channel, s.SocketID}] = s.Member },
		func(app, user, socket string) { h.users[signin{app, user, socket}] = struct{}{} },
		func(app string, n int) { h.conns[app] = n })
	return h
}
