package webhooks

import (
	"time"

	"github.com/herald-rt/herald/pusher"
)

// occKey names one debounced thing: a channel of an app, or a member (user id) of a channel.
type occKey struct {
	app     *app
	channel string
	userID  string
	member  bool
}

func occKeyOf(a *app, e pusher.WebhookEvent) occKey {
	member := e.Name == pusher.WebhookMemberAdded || e.Name == pusher.WebhookMemberRemoved
	return occKey{app: a, channel: e.Channel, userID: e.UserID, member: member}
}

// occupancy is what the receivers were told about a channel or member, and what the server says.
//
// The server reports each 0→1 transition (occupied, added) and each 1→0 transition (vacated,
// removed) from the connection goroutine that caused it, so two reports of one channel can reach
// Emit in the opposite order to the transitions. n counts rises minus falls as received: whatever
// the arrival order, once every report has arrived n is 1 when the channel is occupied and 0 when it
// is empty. reported says the rise was published and no fall since. A rise is published when n
// becomes positive and it is not reported; a fall when n has stayed at or below zero for the whole
// removal delay and it is reported. Nothing is published twice in a row, so receivers always see
// added/removed (and occupied/vacated) alternate.
//
// told narrows reported per endpoint: bit i is set when the app's endpoint i must hear the fall,
// because it takes falls and the rise was not lost on its way to it (dropped, shed or expired). A
// fall is queued only for those endpoints, and cancels the rise instead where that still waits.
//
// An entry lives while n is not zero, a removal is pending or the rise is reported: the map is
// bounded by the channels and members that exist, plus those within the delay.
type occupancy struct {
	key      occKey // where it is in Dispatcher.occupancy (a Reload may move it)
	n        int
	reported bool
	told     uint64
	pending  *entry // the scheduled removal, while one waits
}

// handle routes one emitted event: the four lifecycle events through the debounce, the others
// straight to the endpoints.
func (d *Dispatcher) handle(a *app, e pusher.WebhookEvent, now time.Time) {
	switch e.Name {
	case pusher.WebhookChannelOccupied, pusher.WebhookMemberAdded:
		d.rise(occKeyOf(a, e), e, now)
	case pusher.WebhookChannelVacated, pusher.WebhookMemberRemoved:
		d.fall(occKeyOf(a, e), e, now)
	default:
		d.publish(a, e, now)
	}
}

// publish queues e for every endpoint of the app that accepts it.
func (d *Dispatcher) publish(a *app, e pusher.WebhookEvent, now time.Time) {
	for _, ep := range a.endpoints {
		if ep.accepts(e) {
			d.enqueue(ep, e, now)
		}
	}
}

func (d *Dispatcher) state(k occKey) *occupancy {
	s := d.occupancy[k]
	if s == nil {
		s = &occupancy{key: k}
		d.occupancy[k] = s
	}
	return s
}

// rise handles channel_occupied and member_added: a pending removal is cancelled (the reload case:
// nothing is sent either way); otherwise the event is published if it is not reported.
func (d *Dispatcher) rise(k occKey, e pusher.WebhookEvent, now time.Time) {
	s := d.state(k)
	s.n++
	if s.n > 0 {
		if s.pending != nil {
			d.sched.cancel(s.pending)
			s.pending = nil
		}
		if !s.reported {
			d.publishRise(k.app, s, e, now)
		}
	}
	d.forget(k, s)
}

// publishRise queues a rise for the endpoints that accept it and records which endpoints must hear
// its fall.
func (d *Dispatcher) publishRise(a *app, s *occupancy, e pusher.WebhookEvent, now time.Time) {
	s.reported = true
	fall := e
	fall.Name = fallOf(e.Name)
	for _, ep := range a.endpoints {
		if ep.accepts(e) && d.enqueue(ep, e, now) == nil {
			continue // dropped: its receiver will not hear of the removal either
		}
		if ep.accepts(fall) {
			s.told |= ep.bit
		}
	}
}

// fall handles channel_vacated and member_removed. When every endpoint that must hear it still has
// the rise waiting, the pair cancels at once: the receivers never heard of the channel, there is
// nothing for the delay to hide. Otherwise the removal waits RemovalDelay (not while shutting
// down) and is then published unless a rise came in between.
func (d *Dispatcher) fall(k occKey, e pusher.WebhookEvent, now time.Time) {
	s := d.state(k)
	s.n--
	if s.n <= 0 && s.reported && s.pending == nil {
		if d.cfg.RemovalDelay < 0 || d.closing || !d.fallNeeded(k.app, s, e) {
			d.publishFall(k.app, s, e, now)
		} else {
			s.pending = d.sched.add(now.Add(d.cfg.RemovalDelay), false, func() { d.removalDue(s, e) })
		}
	}
	d.forget(k, s)
}

// fallNeeded reports whether some endpoint that must hear fall e no longer has its rise waiting
// (the rise was sent, or the endpoint takes only falls).
func (d *Dispatcher) fallNeeded(a *app, s *occupancy, e pusher.WebhookEvent) bool {
	rise := keyAs(riseOf(e.Name), e)
	for _, ep := range a.endpoints {
		if s.told&ep.bit != 0 && ep.queue.find(rise) == nil {
			return true
		}
	}
	return false
}

// publishFall tells the endpoints that must hear fall e: where the rise still waits the two cancel
// out (counted as coalesced), elsewhere the fall is queued.
func (d *Dispatcher) publishFall(a *app, s *occupancy, e pusher.WebhookEvent, now time.Time) {
	rise := keyAs(riseOf(e.Name), e)
	for _, ep := range a.endpoints {
		if s.told&ep.bit == 0 {
			continue
		}
		if w := ep.queue.find(rise); w != nil {
			d.unqueue(ep, w)
			d.stats.coalesced.Add(2)
			continue
		}
		d.enqueue(ep, e, now)
	}
	s.told, s.reported = 0, false
}

// removalDue publishes a removal whose delay has passed.
func (d *Dispatcher) removalDue(s *occupancy, e pusher.WebhookEvent) {
	s.pending = nil
	if s.n <= 0 && s.reported {
		d.publishFall(s.key.app, s, e, d.clock.Now())
	}
	d.forget(s.key, s)
}

// untell records that ep's receiver will never hear of rise e (it was shed or expired), so that it
// does not hear of the removal either.
func (d *Dispatcher) untell(ep *endpoint, e pusher.WebhookEvent) {
	if s := d.occupancy[occKeyOf(ep.app, e)]; s != nil {
		s.told &^= ep.bit
	}
}

// forget drops the entry of something that is gone and that the receivers know is gone.
func (d *Dispatcher) forget(k occKey, s *occupancy) {
	if s.n == 0 && !s.reported && s.pending == nil {
		delete(d.occupancy, k)
	}
}
