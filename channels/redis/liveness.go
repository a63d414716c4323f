package redis

import (
	"context"
	"sync"
	"sync/atomic"
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
			for i := 1; i+1 < len(vals); i += 2 {
				node, _ := vals[i].ToString()
				token, _ := vals[i+1].ToString()
				if node != cl.cfg.NodeID {
					cl.chore(func() { cl.reap(node, token) })
				}
			}
		case "fenced":
			cl.log.Error().Msg("redis: this node was declared dead and evicted (paused or partitioned for longer than the node timeout); closing its connections with 4200 so its clients join again")
			cl.local.Reconnect()
			cl.departed.clear() // the eviction removed those records, and reported their departures
			if cl.reregister() {
				cl.chore(cl.recordConns) // the eviction removed its counts; its connections count until they close
			}
		case "reset":
			if !cl.restoring.CompareAndSwap(false, true) {
				continue // a restore is under way
			}
			cl.log.Warn().Msg("redis: the cluster's data is gone (Redis restarted empty or failed over); re-recording this node's sockets")
			if !cl.reregister() || !cl.chore(cl.restore) {
				cl.restoring.Store(false) // tried again at the next heartbeat
			}
		}
	}
}

// chore runs f on the chores goroutine, so that a long eviction or restore never delays a
// heartbeat, and reports whether it was queued (not when chores are full: the next heartbeat asks
// again).
func (cl *Cluster) chore(f func()) bool {
	select {
	case cl.chores <- f:
		return true
	default:
		return false
	}
}

// runChores runs the chores one at a time until Close.
func (cl *Cluster) runChores() {
	defer cl.wg.Done()
	for {
		select {
		case <-cl.ctx.Done():
			return
		case f := <-cl.chores:
			f()
		}
	}
}

func (cl *Cluster) reregister() bool {
	ctx, cancel := context.WithTimeout(cl.ctx, 10*time.Second)
	defer cancel()
	if err := cl.register(ctx); err != nil {
		cl.log.Error().Err(err).Msg("redis: cannot register this node again; retrying at the next heartbeat")
		return false
	}
	return true
}

// reap evicts a dead node's registration token. Every survivor may try at once: evict.lua takes
// each record once, and stops if the node registered again.
func (cl *Cluster) reap(node, token string) {
	ctx, cancel := context.WithTimeout(cl.ctx, 30*time.Second)
	defer cancel()
	n, err := cl.evict(ctx, node, token)
	if err != nil {
		cl.log.Error().Err(err).Str("dead_node", node).Msg("redis: evicting a dead node failed; retrying at the next heartbeat")
		return
	}
	cl.log.Warn().Str("dead_node", node).Int("records", n).Dur("node_timeout", cl.cfg.NodeTimeout).Msg("redis: evicted a node that stopped beating")
}

// restore re-records everything this node holds, quietly: nothing changed for the clients, so
// nothing is announced and no webhook is due. It runs restoreWorkers joins at once (rueidis
// pipelines them), on the chores goroutine while the heartbeat goes on. A subscription that ends
// while it runs finds no record, and is remembered as a departure (restoring is set), reported
// once every node has restored; a second look at what the node holds removes what was re-recorded
// after its socket left, quietly, since that departure is the one remembered.
func (cl *Cluster) restore() {
	defer cl.restoring.Store(false)
	ctx, cancel := context.WithTimeout(cl.ctx, 10*time.Minute)
	defer cancel()
	before := cl.holdings()
	var failed atomic.Int64
	work := make(chan func(), restoreWorkers)
	var wg sync.WaitGroup
	for range restoreWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				f()
			}
		}()
	}
	for s := range before.subs {
		work <- func() {
			if _, err := cl.join(ctx, before.sub(s), true); err != nil {
				failed.Add(1)
			}
		}
	}
	for u := range before.users {
		work <- func() {
			if _, err := (Users{cl}).Connect(ctx, u.app, u.user, u.socket); err != nil {
				failed.Add(1)
			}
		}
	}
	close(work)
	wg.Wait()
	failed.Add(int64(cl.setConns(ctx, before.conns)))
	after := cl.holdings()
	for s := range before.subs {
		if _, held := after.subs[s]; !held {
			_, _, _ = cl.leave(ctx, s.app, s.channel, s.socket, true)
		}
	}
	for u := range before.users {
		if _, held := after.users[u]; !held {
			_, _, _ = cl.disconnect(ctx, u.app, u.user, u.socket)
		}
	}
	ev := cl.log.Info()
	if n := failed.Load(); n > 0 {
		ev = cl.log.Error().Int64("failed", n)
	}
	ev.Int("subscriptions", len(before.subs)).Int("signed_in", len(before.users)).Msg("redis: re-recorded this node's sockets")
}

// restoreWorkers is how many joins a restore has in flight at once.
const restoreWorkers = 32

// recordConns records this node's connection counts again, after an eviction removed them.
func (cl *Cluster) recordConns() {
	ctx, cancel := context.WithTimeout(cl.ctx, time.Minute)
	defer cancel()
	if n := cl.setConns(ctx, cl.holdings().conns); n > 0 {
		cl.log.Error().Int("failed", n).Msg("redis: cannot record this node's connection counts; the anti-entropy pass retries")
	}
}

// setConns records this node's connection count of each app, and returns how many it could not.
func (cl *Cluster) setConns(ctx context.Context, conns map[string]int) (failed int) {
	for app, n := range conns {
		k := cl.keys.app(app, "conns")
		err := cl.client.Do(ctx, cl.client.B().Hset().Key(k).FieldValue().FieldValue(cl.cfg.NodeID, itoa(int64(n))).Build()).Error()
		if err == nil {
			err = cl.client.Do(ctx, cl.client.B().Sadd().Key(cl.keys.global("nodeapps:"+cl.cfg.NodeID)).Member(app).Build()).Error()
		}
		if err != nil {
			failed++
		}
	}
	return failed
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
