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
	mu    sync.Mutex
	subs  map[subKey]departedSub
	users map[signin]time.Time
	lost  int // removals not remembered since the last report, past the bound
}

type departedSub struct {
	sub channels.Subscription
	at  time.Time
}

const maxDepartures = 100_000

func newDepartures() *departures {
	return &departures{subs: map[subKey]departedSub{}, users: map[signin]time.Time{}}
}

func (d *departures) addSub(s channels.Subscription) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.subs) >= maxDepartures {
		d.lost++
		return
	}
	d.subs[subKey{s.AppID, s.Channel, s.SocketID}] = departedSub{sub: s, at: time.Now()}
}

func (d *departures) addUser(u signin) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.users) >= maxDepartures {
		d.lost++
		return
	}
	d.users[u] = time.Now()
}

// due returns the departures remembered before since, and how many were not remembered at all
// since the last call.
func (d *departures) due(since time.Time) (subs []channels.Subscription, users []signin, lost int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.subs {
		if s.at.Before(since) {
			subs = append(subs, s.sub)
		}
	}
	for u, at := range d.users {
		if at.Before(since) {
			users = append(users, u)
		}
	}
	lost, d.lost = d.lost, 0
	return subs, users, lost
}

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
