package redis

import (
	"sync"
	"time"

	"github.com/herald-rt/herald/channels"
)

// departures remembers the subscriptions and sign-ins whose removal never reached Redis (it was
// unreachable, or the call timed out), so that their departures are still reported: member_removed
// to the channel's subscribers, the member_removed and channel_vacated webhooks, the watchers'
// offline event. If Redis kept its data, the record is still there and leaves as usual; if it lost
// it (restarted empty), every node re-records what it holds, and the departure is recorded and then
// removed, so that leave.lua decides against the restored state whether it was the user's last
// socket or the channel's last subscription.
//
// It is bounded: past maxDepartures a removal is logged as unreported instead.
type departures struct {
	mu      sync.Mutex
	subs    map[subKey]departedSub
	users   map[signin]departure
	overrun int // removals not remembered since the last report, past the bound
}

// departure is when a removal failed and what is known of its record: lost says Redis lost it with
// its data; otherwise the removal failed in flight, and may or may not have been applied in the
// epoch the node was registered in then.
type departure struct {
	at    time.Time
	lost  bool
	epoch string
}

type departedSub struct {
	sub channels.Subscription
	departure
}

const maxDepartures = 100_000

func newDepartures() *departures {
	return &departures{subs: map[subKey]departedSub{}, users: map[signin]departure{}}
}

func (d *departures) addSub(s channels.Subscription, lost bool, epoch string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.subs) >= maxDepartures {
		d.overrun++
		return
	}
	d.subs[subKey{s.AppID, s.Channel, s.SocketID}] = departedSub{sub: s, departure: departure{time.Now(), lost, epoch}}
}

func (d *departures) addUser(u signin, lost bool, epoch string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.users) >= maxDepartures {
		d.overrun++
		return
	}
	d.users[u] = departure{time.Now(), lost, epoch}
}

// due returns the departures remembered before since, and how many were not remembered at all
// since the last call.
func (d *departures) due(since time.Time) (subs []departedSub, users map[signin]departure, overrun int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.subs {
		if s.at.Before(since) {
			subs = append(subs, s)
		}
	}
	users = map[signin]departure{}
	for u, dep := range d.users {
		if dep.at.Before(since) {
			users[u] = dep
		}
	}
	overrun, d.overrun = d.overrun, 0
	return subs, users, overrun
}

// lostSince reports whether a departure's record, not in Redis now, was lost with Redis's data
// (rather than removed: its removal applied although the call failed, or an eviction reported it):
// known lost, or failed in an epoch that has ended since.
func (dep departure) lostSince(epoch string) bool { return dep.lost || dep.epoch != epoch }

func (d *departures) doneSub(s channels.Subscription) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.subs, subKey{s.AppID, s.Channel, s.SocketID})
}

func (d *departures) doneUser(u signin) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.users, u)
}

// clear forgets every departure: the node was evicted, which removed its records and reported them.
func (d *departures) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.subs)
	clear(d.users)
}
