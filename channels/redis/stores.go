package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/pusher"
)

// Channels is the cluster's channels.Channels: every subscription on every node, recorded in Redis by
// join.lua and leave.lua, which decide the transitions and announce member changes themselves (in
// the order Redis runs them, which is the order of the changes). It reports no Occupied, Added,
// Vacated or Removed: those webhooks go through the cluster's outbox, once per cluster.
type Channels struct{ cl *Cluster }

// RecordsWebhooks implements channels.WebhookRecorder: the transition scripts record every
// transition's webhook in the app's outbox.
func (s Channels) RecordsWebhooks() bool { return true }

// Subscribe implements channels.Channels in one round trip (join.lua).
func (s Channels) Subscribe(ctx context.Context, sub channels.Subscription) (channels.Joined, error) {
	j, err := s.cl.join(ctx, sub, false)
	if err == nil {
		s.cl.departed.doneSub(sub) // subscribed again after a removal that failed: it is held
	}
	return j, err
}

// Unsubscribe implements channels.Channels in one round trip (leave.lua). A removal that fails, or
// finds its record lost with Redis's data, is reported later by the reconcile loop.
func (s Channels) Unsubscribe(ctx context.Context, sub channels.Subscription) (channels.Left, error) {
	l, lost, err := s.cl.leave(ctx, sub.AppID, sub.Channel, sub.SocketID, false)
	if err != nil || lost {
		s.cl.departed.addSub(sub, lost, s.cl.reg.Load().epoch)
	}
	return l, err
}

// Members implements channels.Channels in one round trip (members.lua).
func (s Channels) Members(ctx context.Context, appID, channel string) (channels.Roster, error) {
	ctx, cancel := s.cl.call(ctx)
	defer cancel()
	vals, err := s.cl.run(ctx, s.cl.scripts.members, appID, channel).ToArray()
	if err != nil || len(vals) == 0 {
		return channels.Roster{}, errOr(err)
	}
	version, _ := vals[0].AsUint64()
	members, err := parseMembers(vals[1:])
	return channels.Roster{Members: members, Version: version}, err
}

// Info implements channels.Channels in one round trip (three reads, pipelined).
func (s Channels) Info(ctx context.Context, appID, channel string) (channels.ChannelInfo, error) {
	ctx, cancel := s.cl.call(ctx)
	defer cancel()
	k, c := s.cl.keys, s.cl.client
	res := c.DoMulti(ctx,
		c.B().Hget().Key(k.app(appID, "occ")).Field(channel).Build(),
		c.B().Hlen().Key(k.of(appID, "m", channel)).Build(),
		c.B().Get().Key(k.app(appID, "ver")).Build())
	info := channels.ChannelInfo{Name: channel}
	for i, r := range res {
		n, err := r.AsInt64()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return info, err
		}
		switch i {
		case 0:
			info.Subscriptions = int(n)
		case 1:
			info.Users = int(n)
		case 2:
			info.Version = uint64(n)
		}
	}
	return info, nil
}

// List implements channels.Channels in one round trip (list.lua).
func (s Channels) List(ctx context.Context, appID, prefix string, users bool) ([]channels.ChannelInfo, error) {
	ctx, cancel := s.cl.call(ctx)
	defer cancel()
	vals, err := s.cl.run(ctx, s.cl.scripts.list, appID, prefix, flag(users)).ToArray()
	if err != nil {
		return nil, err
	}
	list := make([]channels.ChannelInfo, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		name, _ := vals[i].ToString()
		subs, _ := vals[i+1].AsInt64()
		n, _ := vals[i+2].AsInt64()
		list = append(list, channels.ChannelInfo{Name: name, Subscriptions: int(subs), Users: int(n)})
	}
	return list, nil
}

// join runs join.lua for one subscription; quiet re-records it without announcing or recording
// webhooks (a node restoring its sockets after Redis lost them).
func (cl *Cluster) join(ctx context.Context, sub channels.Subscription, quiet bool) (channels.Joined, error) {
	ctx, cancel := cl.call(ctx)
	defer cancel()
	var user, info, frame string
	if m := sub.Member; m != nil {
		user, info = m.UserID, string(m.Info)
		if info == "" {
			info = "null"
		}
		frame = string(pusher.EventFrame(pusher.EventMemberAdded, sub.Channel, pusher.MemberAddedData(*m), ""))
	}
	vals, err := cl.run(ctx, cl.scripts.join, sub.AppID, sub.Channel, sub.SocketID, cl.cfg.NodeID, user, info,
		strconv.Itoa(sub.MaxMembers), frame, flag(quiet), flag(sub.Counted)).ToArray()
	if err != nil || len(vals) == 0 {
		return channels.Joined{}, errOr(err)
	}
	count, _ := vals[0].AsInt64()
	if count < 0 {
		return channels.Joined{}, channels.ErrPresenceFull
	}
	version, _ := vals[1].AsUint64()
	j := channels.Joined{Count: int(count), Version: version}
	if sub.Member != nil {
		j.Roster.Version = version
		if j.Roster.Members, err = parseMembers(vals[4:]); err != nil {
			return j, err
		}
	}
	return j, nil
}

// leave runs leave.lua for one subscription. lost reports that its record was not there because
// Redis lost it (its epoch changed, or this node is restoring what it holds), rather than because
// an eviction removed it and reported its departure.
func (cl *Cluster) leave(ctx context.Context, appID, channel, socketID string, quiet bool) (l channels.Left, lost bool, err error) {
	ctx, cancel := cl.call(ctx)
	defer cancel()
	vals, err := cl.run(ctx, cl.scripts.leave, appID, channel, socketID, flag(quiet), cl.delayMS()).ToArray()
	if err != nil || len(vals) < 2 {
		return channels.Left{}, false, errOr(err)
	}
	count, _ := vals[0].AsInt64()
	version, _ := vals[1].AsUint64()
	if len(vals) == 5 {
		epoch, _ := vals[4].ToString()
		lost = cl.lostWith(epoch)
	}
	return channels.Left{Count: int(count), Version: version}, lost, nil
}

// lostWith reports whether a record missing while Redis is in epoch was lost with Redis's data.
func (cl *Cluster) lostWith(epoch string) bool {
	return epoch != cl.reg.Load().epoch || cl.restoring.Load()
}

// disconnect runs disconnect.lua: left is the user's sockets after it, -1 when the socket was not
// recorded, and lost as for leave.
func (cl *Cluster) disconnect(ctx context.Context, appID, userID, socketID string) (left int, lost bool, err error) {
	ctx, cancel := cl.call(ctx)
	defer cancel()
	vals, err := cl.run(ctx, cl.scripts.disconnect, appID, userID, socketID).ToArray()
	if err != nil || len(vals) == 0 {
		return 0, false, errOr(err)
	}
	n, _ := vals[0].AsInt64()
	if len(vals) == 2 {
		epoch, _ := vals[1].ToString()
		lost = cl.lostWith(epoch)
	}
	return int(n), lost, nil
}

func parseMembers(vals []rueidis.RedisMessage) ([]pusher.Member, error) {
	members := make([]pusher.Member, 0, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		id, err := vals[i].ToString()
		if err != nil {
			return nil, err
		}
		info, _ := vals[i+1].ToString()
		m := pusher.Member{UserID: id}
		if info != "null" && info != "" {
			m.Info = []byte(info)
		}
		members = append(members, m)
	}
	return members, nil
}

// Users is the cluster's channels.Users: each signed-in socket, recorded by connect.lua and
// disconnect.lua with the node that holds it.
type Users struct{ cl *Cluster }

// Connect implements channels.Users.
func (u Users) Connect(ctx context.Context, appID, userID, socketID string) (bool, error) {
	ctx, cancel := u.cl.call(ctx)
	defer cancel()
	n, err := u.cl.run(ctx, u.cl.scripts.connect, appID, userID, socketID, u.cl.cfg.NodeID).AsInt64()
	return n == 1, err
}

// Disconnect implements channels.Users. A socket evicted meanwhile reports not last: its eviction
// already told the watchers. A sign-out that fails, or finds its record lost with Redis's data, is
// reported later by the reconcile loop.
func (u Users) Disconnect(ctx context.Context, appID, userID, socketID string) (bool, error) {
	n, lost, err := u.cl.disconnect(ctx, appID, userID, socketID)
	if err != nil || lost {
		u.cl.departed.addUser(signin{appID, userID, socketID}, lost, u.cl.reg.Load().epoch)
	}
	return n == 0, err
}

// Count implements channels.Users.
func (u Users) Count(ctx context.Context, appID, userID string) (int, error) {
	ctx, cancel := u.cl.call(ctx)
	defer cancel()
	n, err := u.cl.client.Do(ctx, u.cl.client.B().Hlen().Key(u.cl.keys.of(appID, "u", userID)).Build()).AsInt64()
	return int(n), err
}

// Cache is the cluster's channels.Cache: a cache channel's last event is one Redis hash with its TTL,
// stamped by cacheset.lua with the app's version counter, which only grows.
type Cache struct{ cl *Cluster }

// Set implements channels.Cache.
func (c Cache) Set(ctx context.Context, appID, channel string, frame []byte, ttl time.Duration) (uint64, error) {
	ctx, cancel := c.cl.call(ctx)
	defer cancel()
	n, err := c.cl.run(ctx, c.cl.scripts.cacheSet, appID, channel, string(frame), strconv.FormatInt(ttl.Milliseconds(), 10)).AsUint64()
	return n, err
}

// Get implements channels.Cache in one round trip.
func (c Cache) Get(ctx context.Context, appID, channel string) (channels.CachedEvent, bool, error) {
	ctx, cancel := c.cl.call(ctx)
	defer cancel()
	k, rc := c.cl.keys.of(appID, "cache", channel), c.cl.client
	res := rc.DoMulti(ctx, rc.B().Hmget().Key(k).Field("f", "q").Build(), rc.B().Pttl().Key(k).Build())
	vals, err := res[0].ToArray()
	if err != nil || len(vals) != 2 {
		return channels.CachedEvent{}, false, errOr(err)
	}
	frame, err := vals[0].ToString()
	if rueidis.IsRedisNil(err) {
		return channels.CachedEvent{}, false, nil
	}
	seq, _ := vals[1].AsUint64()
	ttl, _ := res[1].AsInt64()
	if ttl <= 0 {
		return channels.CachedEvent{}, false, nil
	}
	return channels.CachedEvent{Frame: []byte(frame), Seq: seq, TTL: time.Duration(ttl) * time.Millisecond}, true, nil
}

// Miss implements channels.Cache with one SET NX: the first node to miss within the interval sends
// the cache_miss webhook.
func (c Cache) Miss(ctx context.Context, appID, channel string) (bool, error) {
	ctx, cancel := c.cl.call(ctx)
	defer cancel()
	rc := c.cl.client
	err := rc.Do(ctx, rc.B().Set().Key(c.cl.keys.of(appID, "miss", channel)).Value("1").Nx().
		PxMilliseconds(channels.CacheMissInterval.Milliseconds()).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

// Quota is the cluster's channels.Quota: an app's connections on every node, counted per node in
// one hash, checked and incremented in one step by admit.lua.
type Quota struct{ cl *Cluster }

// Admit implements channels.Quota.
func (q Quota) Admit(ctx context.Context, appID string, max int) (bool, error) {
	ctx, cancel := q.cl.call(ctx)
	defer cancel()
	n, err := q.cl.run(ctx, q.cl.scripts.admit, appID, q.cl.cfg.NodeID, strconv.Itoa(max)).AsInt64()
	return n == 1, err
}

// Release implements channels.Quota (release.lua: never below zero).
func (q Quota) Release(ctx context.Context, appID string) {
	ctx, cancel := q.cl.call(ctx)
	defer cancel()
	if err := q.cl.run(ctx, q.cl.scripts.release, appID, q.cl.cfg.NodeID).Error(); err != nil {
		q.cl.log.Error().Err(err).Str("app_id", appID).Msg("redis: a closed connection still counts against its app's quota until this node re-records its state")
	}
}

var errEmpty = errors.New("redis: empty reply")

func errOr(err error) error {
	if err != nil {
		return err
	}
	return errEmpty
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
