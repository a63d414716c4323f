package redis

import (
	"context"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Anti-entropy. Each node is the source of truth for its own sockets, and its records in Redis
// should match them; a failed store call can leave them apart while the node lives:
//   - a ghost: Redis records a subscription or sign-in the node no longer holds (its leave failed,
//     or a join timed out on this side after Redis applied it). Left alone it keeps a channel
//     occupied and a member listed for as long as the node lives.
//   - a loss: the node holds what Redis does not record (a failover to a replica that missed the
//     write; an outage that emptied Redis is the "reset" the heartbeat sees and restore mends).
//   - a drifted connection count: a Release that failed keeps counting against the app's quota.
//
// A reconcile pass compares the two and mends only what it also found apart on the pass before:
// a subscription being set up or torn down while a pass reads is apart for a moment, never for two
// passes in a row, since every store call is bounded by the call timeout. A ghost leaves as a
// departure (member_removed announced, webhooks after the grace); a loss is recorded again quietly,
// since the clients saw no change.

// reconcileLoop runs a reconcile pass every ReconcileInterval, beside the heartbeat so that a long
// pass never delays a beat.
func (cl *Cluster) reconcileLoop() {
	defer cl.wg.Done()
	tick := time.NewTicker(cl.cfg.ReconcileInterval)
	defer tick.Stop()
	var state reconcileState
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(cl.ctx, cl.cfg.ReconcileInterval)
		n, err := cl.reconcile(ctx, &state)
		cancel()
		switch {
		case err != nil:
			state = reconcileState{} // what was apart must be found apart twice in a row
			if cl.ctx.Err() == nil {
				cl.log.Error().Err(err).Msg("redis: comparing this node's records with its sockets failed; retrying at the next pass")
			}
		case n > 0:
			cl.mended.Add(int64(n))
			cl.log.Warn().Int("records", n).Msg("redis: mended records that differed from this node's sockets (a store call had failed)")
		}
	}
}

// reconcileState is what one pass found apart, for the next pass to confirm. Owned by the
// liveness loop.
type reconcileState struct {
	ghosts, lost          map[subKey]bool
	ghostUsers, lostUsers map[signin]bool
	connDrift             map[string]int64 // app → recorded less held
}

// reconcileBatch is how many records one SSCAN reads.
const reconcileBatch = 1000

// reconcile runs one pass, and reports how many records it mended. It also reports the departures
// Redis missed (see departures) remembered for at least a pass, by which time every node has
// re-recorded what it holds if Redis lost its data. It does nothing while the node is not
// registered in the cluster's current epoch: the heartbeat mends that first.
func (cl *Cluster) reconcile(ctx context.Context, prev *reconcileState) (mended int, err error) {
	started := time.Now()
	if registered, err := cl.registered(ctx); err != nil || !registered || cl.leaving.Load() {
		return 0, err
	}
	recordedSubs, recordedUsers, err := cl.recorded(ctx)
	if err != nil {
		return 0, err
	}
	if since := started.Add(-cl.cfg.ReconcileInterval); cl.reg.Load().at.Before(since) {
		// Registered a pass ago: after Redis lost its data, every node has recorded its sockets again.
		mended += cl.reportDepartures(ctx, recordedSubs, since)
	}
	held := cl.holdings()
	recordedConns, err := cl.recordedConns(ctx, held.conns)
	if err != nil {
		return 0, err
	}
	next := reconcileState{connDrift: map[string]int64{}}
	next.ghosts, next.lost = missing(recordedSubs, held.subs), missing(held.subs, recordedSubs)
	next.ghostUsers, next.lostUsers = missing(recordedUsers, held.users), missing(held.users, recordedUsers)
	for app, n := range held.conns {
		if drift := recordedConns[app] - int64(n); drift != 0 {
			next.connDrift[app] = drift
		}
	}

	for s := range next.ghosts {
		if prev.ghosts[s] {
			if _, _, err := cl.leave(ctx, s.app, s.channel, s.socket, false); err == nil {
				mended++
			}
		}
	}
	for s := range next.lost {
		if prev.lost[s] {
			if _, err := cl.join(ctx, held.sub(s), true); err == nil {
				mended++
			}
		}
	}
	users := Users{cl}
	for u := range next.ghostUsers {
		if prev.ghostUsers[u] {
			if last, err := users.Disconnect(ctx, u.app, u.user, u.socket); err == nil {
				mended++
				if last {
					cl.local.Offline(u.app, u.user)
				}
			}
		}
	}
	for u := range next.lostUsers {
		if prev.lostUsers[u] {
			if _, err := users.Connect(ctx, u.app, u.user, u.socket); err == nil {
				mended++
			}
		}
	}
	for app, drift := range next.connDrift {
		if prev.connDrift[app] == drift { // the same drift twice: not an admission under way
			c, k := cl.client, cl.keys.app(app, "conns")
			res := c.DoMulti(ctx, c.B().Hincrby().Key(k).Field(cl.cfg.NodeID).Increment(-drift).Build(),
				c.B().Sadd().Key(cl.keys.global("nodeapps:"+cl.cfg.NodeID)).Member(app).Build())
			if res[0].Error() == nil && res[1].Error() == nil {
				mended++
			}
		}
	}
	*prev = next
	return mended, nil
}

// registered reports whether the node's registration is current: Redis has its token in the epoch
// it registered in.
func (cl *Cluster) registered(ctx context.Context) (bool, error) {
	reg := cl.reg.Load()
	ctx, cancel := cl.call(ctx)
	defer cancel()
	c := cl.client
	res := c.DoMulti(ctx, c.B().Get().Key(cl.keys.global("epoch")).Build(),
		c.B().Hget().Key(cl.keys.global("alive")).Field(cl.cfg.NodeID).Build())
	epoch, err1 := res[0].ToString()
	token, err2 := res[1].ToString()
	for _, err := range []error{err1, err2} {
		if err != nil && !rueidis.IsRedisNil(err) {
			return false, err
		}
	}
	return epoch == reg.epoch && token == reg.token, nil
}

// reportDepartures removes the departures remembered before since. A record Redis still has
// leaves as usual. One Redis lost is recorded quietly first, so that leave.lua decides what its
// departure changed against the state the nodes restored; one that is gone because its removal
// applied after all needs nothing more. Each removal is announced and its webhooks recorded. It
// returns how many it reported.
func (cl *Cluster) reportDepartures(ctx context.Context, recorded map[subKey]bool, since time.Time) (n int) {
	subs, users, overrun := cl.departed.due(since)
	if overrun > 0 {
		cl.log.Error().Int("departures", overrun).Msg("redis: more removals failed than this node remembers; their member_removed and channel_vacated are not reported")
	}
	epoch := cl.reg.Load().epoch
	for _, d := range subs {
		s := d.sub
		if !recorded[subKey{s.AppID, s.Channel, s.SocketID}] {
			if !d.lostSince(epoch) {
				cl.departed.doneSub(s) // removed after all
				continue
			}
			if _, err := cl.join(ctx, s, true); err != nil {
				continue
			}
		}
		if _, _, err := cl.leave(ctx, s.AppID, s.Channel, s.SocketID, false); err == nil {
			cl.departed.doneSub(s)
			n++
		}
	}
	for u, d := range users {
		left, _, err := cl.disconnect(ctx, u.app, u.user, u.socket)
		if err != nil {
			continue
		}
		cl.departed.doneUser(u)
		if left == 0 || (left < 0 && d.lostSince(epoch)) {
			cl.local.Offline(u.app, u.user) // published only if the user has no socket left by then
			n++
		}
	}
	return n
}

// recorded reads the subscriptions and sign-ins Redis records for this node.
func (cl *Cluster) recorded(ctx context.Context) (map[subKey]bool, map[signin]bool, error) {
	subs, users := map[subKey]bool{}, map[signin]bool{}
	err := cl.scan(ctx, cl.keys.global("node:"+cl.cfg.NodeID), func(e string) {
		if a, b, c, ok := split3(e); ok {
			subs[subKey{a, b, c}] = true
		}
	})
	if err == nil {
		err = cl.scan(ctx, cl.keys.global("nodeu:"+cl.cfg.NodeID), func(e string) {
			if a, b, c, ok := split3(e); ok {
				users[signin{a, b, c}] = true
			}
		})
	}
	return subs, users, err
}

// recordedConns reads this node's connection count of each app it counts connections of.
func (cl *Cluster) recordedConns(ctx context.Context, apps map[string]int) (map[string]int64, error) {
	out := make(map[string]int64, len(apps))
	for app := range apps {
		ctx, cancel := cl.call(ctx)
		n, err := cl.client.Do(ctx, cl.client.B().Hget().Key(cl.keys.app(app, "conns")).Field(cl.cfg.NodeID).Build()).AsInt64()
		cancel()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, err
		}
		out[app] = n
	}
	return out, nil
}

// scan calls f for every member of a set, a batch per round trip.
func (cl *Cluster) scan(ctx context.Context, key string, f func(string)) error {
	cursor := uint64(0)
	for {
		ctx, cancel := cl.call(ctx)
		e, err := cl.client.Do(ctx, cl.client.B().Sscan().Key(key).Cursor(cursor).Count(reconcileBatch).Build()).AsScanEntry()
		cancel()
		if err != nil {
			return err
		}
		for _, m := range e.Elements {
			f(m)
		}
		if cursor = e.Cursor; cursor == 0 {
			return nil
		}
	}
}

// split3 splits a record of three fields joined by newlines (see common.lua).
func split3(e string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(e, "\n")
	b, c, ok2 := strings.Cut(rest, "\n")
	return a, b, c, ok1 && ok2
}

// missing returns the keys of have that want lacks.
func missing[K comparable, V, W any](have map[K]V, want map[K]W) map[K]bool {
	out := map[K]bool{}
	for k := range have {
		if _, ok := want[k]; !ok {
			out[k] = true
		}
	}
	return out
}
