package webhooks

import (
	"github.com/herald-rt/herald/pusher"
)

// occKey names one debounced thing: a channel of an app, or a member (user id) of a channel.
type occKey struct {
	app     *app
	channel string
	userID  string
	member  bool
}

// occupancy is what the receivers were told about a channel or member, and what the server says.
//
// The server reports each 0→1 transition (occupied, added) and each 1→0 transition (vacated,
// removed) from the connection goroutine that caused it, so two reports of one channel can reach
// Emit in the opposite order to the transitions. n counts rises minus falls as received: whatever
// the arrival order, once every report has arrived n is 1 when the channel is occupied and 0 when it
// is empty. reported is what the receivers last heard. A rise is sent when n becomes positive and
// the receivers think it empty; a fall is sent when n has stayed at or below zero for the whole
// removal delay and the receivers think it occupied. Nothing is sent twice in a row, so receivers
// always see added/removed (and occupied/vacated) alternate.
//
// An entry lives while n is not zero, a removal is pending or the receivers believe the thing
// exists: the map is bounded by the channels and members that exist, plus those within the delay.
type occupancy struct {
	n        int
	reported bool
	pending  *entry // the scheduled removal, while one waits
}

// handle routes one emitted event: the four lifecycle events through the debounce, the others
// straight to the app's batch.
func (d *Dispatcher) handle(a *app, e pusher.WebhookEvent) {
	switch e.Name {
	case pusher.WebhookChannelOccupied:
		d.rise(occKey{app: a, channel: e.Channel}, e)
	case pusher.WebhookChannelVacated:
		d.fall(occKey{app: a, channel: e.Channel}, e)
	case pusher.WebhookMemberAdded:
		d.rise(occKey{app: a, channel: e.Channel, userID: e.UserID, member: true}, e)
	case pusher.WebhookMemberRemoved:
		d.fall(occKey{app: a, channel: e.Channel, userID: e.UserID, member: true}, e)
	default:
		d.publish(a, e)
	}
}

func (d *Dispatcher) state(k occKey) *occupancy {
	s := d.occupancy[k]
	if s == nil {
		s = &occupancy{}
		d.occupancy[k] = s
	}
	return s
}

// rise handles channel_occupied and member_added: a pending removal is cancelled (the reload case:
// nothing is sent either way); otherwise the event is sent if the receivers think it absent.
func (d *Dispatcher) rise(k occKey, e pusher.WebhookEvent) {
	s := d.state(k)
	s.n++
	if s.n > 0 {
		if s.pending != nil {
			d.sched.cancel(s.pending)
			s.pending = nil
		}
		if !s.reported {
			s.reported = true
			d.publish(k.app, e)
		}
	}
	d.forget(k, s)
}

// fall handles channel_vacated and member_removed: the removal waits RemovalDelay (not while
// shutting down) and is then sent unless a rise came in between.
func (d *Dispatcher) fall(k occKey, e pusher.WebhookEvent) {
	s := d.state(k)
	s.n--
	if s.n <= 0 && s.reported && s.pending == nil {
		if d.cfg.RemovalDelay < 0 || d.closing {
			s.reported = false
			d.publish(k.app, e)
		} else {
			s.pending = d.sched.add(d.clock.Now().Add(d.cfg.RemovalDelay), false, func() { d.removalDue(k, s, e) })
		}
	}
	d.forget(k, s)
}

// removalDue sends a removal whose delay has passed.
func (d *Dispatcher) removalDue(k occKey, s *occupancy, e pusher.WebhookEvent) {
	s.pending = nil
	if s.n <= 0 && s.reported {
		s.reported = false
		d.publish(k.app, e)
	}
	d.forget(k, s)
}

// forget drops the entry of something that is gone and that the receivers know is gone.
func (d *Dispatcher) forget(k occKey, s *occupancy) {
	if s.n == 0 && !s.reported && s.pending == nil {
		delete(d.occupancy, k)
	}
}
