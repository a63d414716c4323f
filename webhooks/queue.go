package webhooks

import (
	"time"

	"github.com/herald-rt/herald/pusher"
)

// An endpoint's queue holds events, not requests: an event waits as itself until a worker is free
// for the endpoint, and only then do the events at the front become one request (see take). So a
// waiting event can still be cancelled by its pair, merged with a newer one, or shed for a more
// valuable one, one event at a time, whatever batching would have put around it.

// rank orders events by what it costs to lose one; when a queue is full the lowest rank goes first.
// Events on public channels are the cheapest: anyone holding the app key can cause them by the
// thousand (issue 9), where private and presence subscriptions each need the app's signature. A
// rise (occupied) ranks below its fall (vacated): a rise that is shed takes its fall with it and
// the receiver simply never hears of the channel, while a lost fall leaves it believing the channel
// occupied. Member events rank highest, member_removed above member_added for the same reason.
type rank uint8

const (
	rankPublic        rank = iota // channel_occupied, subscription_count, cache_miss on a public channel
	rankPublicVacated             // channel_vacated of a public channel
	rankSigned                    // the same on private and presence channels, and client_event
	rankSignedVacated             // channel_vacated of a private or presence channel
	rankMemberAdded               // member_added
	rankMemberRemoved             // member_removed
	numRanks
)

func rankOf(e pusher.WebhookEvent) rank {
	switch e.Name {
	case pusher.WebhookMemberAdded:
		return rankMemberAdded
	case pusher.WebhookMemberRemoved:
		return rankMemberRemoved
	}
	r := rankPublic
	if kind, _ := pusher.KindOf(e.Channel); kind.NeedsSignature() {
		r = rankSigned
	}
	if e.Name == pusher.WebhookChannelVacated {
		r++
	}
	return r
}

// riseOf and fallOf pair the debounced events: channel_occupied with channel_vacated, member_added
// with member_removed. They return "" for any other name.
func riseOf(fall string) string {
	switch fall {
	case pusher.WebhookChannelVacated:
		return pusher.WebhookChannelOccupied
	case pusher.WebhookMemberRemoved:
		return pusher.WebhookMemberAdded
	}
	return ""
}

func fallOf(rise string) string {
	switch rise {
	case pusher.WebhookChannelOccupied:
		return pusher.WebhookChannelVacated
	case pusher.WebhookMemberAdded:
		return pusher.WebhookMemberRemoved
	}
	return ""
}

// eventKey names the one waiting event that a later event of the endpoint may cancel (its pair's
// rise) or replace (a subscription_count or cache_miss of the same channel).
type eventKey struct {
	name, channel, userID string
}

func keyAs(name string, e pusher.WebhookEvent) eventKey { return eventKey{name, e.Channel, e.UserID} }

// indexed reports whether waiting events of this type are found by key: all but client events.
func indexed(name string) bool { return name != pusher.WebhookClientEvent }

// merges reports whether a new event of this type replaces a waiting one of the same channel:
// only the latest subscription count matters, and one cache_miss says all that two say.
func merges(name string) bool {
	return name == pusher.WebhookSubscriptionCount || name == pusher.WebhookCacheMiss
}

// waiting is one event in an endpoint's queue.
type waiting struct {
	ev        pusher.WebhookEvent // with Pusher's name; renamed for the endpoint when encoded
	at        time.Time           // when it was queued: the batching window and the retry window start here
	rank      rank
	encrypted bool    // on a private-encrypted- channel: travels alone
	ack       *ack    // an outbox event's acknowledgement (see Deliver); nil for the others
	links     [2]link // in the queue's arrival order, and in its rank's list
}

type link struct{ prev, next *waiting }

// list is a doubly linked list through one of the two links of its elements.
type list struct {
	head, tail *waiting
	n          int
	via        int // which link
}

func (l *list) pushBack(w *waiting) {
	w.links[l.via] = link{prev: l.tail}
	if l.tail != nil {
		l.tail.links[l.via].next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

func (l *list) remove(w *waiting) {
	lk := w.links[l.via]
	if lk.prev != nil {
		lk.prev.links[l.via].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		lk.next.links[l.via].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	w.links[l.via] = link{}
	l.n--
}

// eventQueue is an endpoint's waiting events in arrival order, with what shedding, cancelling and
// merging need to find one in constant time. Owned by whoever holds Dispatcher.mu.
type eventQueue struct {
	order     list
	ranks     [numRanks]list
	index     map[eventKey]*waiting
	encrypted int // waiting events on private-encrypted- channels
}

func newEventQueue() eventQueue {
	q := eventQueue{order: list{via: 0}, index: map[eventKey]*waiting{}}
	for r := range q.ranks {
		q.ranks[r].via = 1
	}
	return q
}

func (q *eventQueue) len() int        { return q.order.n }
func (q *eventQueue) front() *waiting { return q.order.head }

// find returns the waiting event with key k, or nil.
func (q *eventQueue) find(k eventKey) *waiting { return q.index[k] }

func (q *eventQueue) push(w *waiting) {
	q.order.pushBack(w)
	q.ranks[w.rank].pushBack(w)
	if indexed(w.ev.Name) {
		q.index[keyAs(w.ev.Name, w.ev)] = w
	}
	if w.encrypted {
		q.encrypted++
	}
}

func (q *eventQueue) remove(w *waiting) {
	q.order.remove(w)
	q.ranks[w.rank].remove(w)
	if k := keyAs(w.ev.Name, w.ev); indexed(w.ev.Name) && q.index[k] == w {
		delete(q.index, k)
	}
	if w.encrypted {
		q.encrypted--
	}
}

// lowest returns the oldest waiting event of the lowest rank below r, or nil when every waiting
// event is worth at least as much as one of rank r.
func (q *eventQueue) lowest(below rank) *waiting {
	for r := range below {
		if w := q.ranks[r].head; w != nil {
			return w
		}
	}
	return nil
}

// An endpoint is backlogged when its queue reaches backlogEvents (or its whole bound, if smaller),
// or when the event at its front has waited backlogAge by the time a worker is free for it: sending
// one event per request it is falling behind, so its requests carry up to packMax events until its
// queue is empty again.
const (
	backlogEvents = 100
	backlogAge    = 100 * time.Millisecond
)

// enqueue queues e for ep and returns where it waits, or nil when it was dropped. It never lets the queue grow past
// EndpointQueueSize: a subscription_count or cache_miss merges into a waiting one of its channel
// (coalesced); a full queue sheds its lowest-ranked waiting event below e's rank to make room (shed),
// and when there is none, e itself is dropped (endpoint_queue_full).
func (d *Dispatcher) enqueue(ep *endpoint, e pusher.WebhookEvent, now time.Time) *waiting {
	q := &ep.queue
	if merges(e.Name) {
		if w := q.find(keyAs(e.Name, e)); w != nil {
			w.ev = e
			d.stats.coalesced.Add(1)
			return w
		}
	}
	r := rankOf(e)
	if q.len() >= d.cfg.EndpointQueueSize {
		shed := q.lowest(r)
		if shed == nil {
			d.dropped(ep, DropEndpointQueueFull, e)
			return nil
		}
		d.discard(ep, shed)
		d.dropped(ep, DropShed, shed.ev)
	}
	w := &waiting{ev: e, at: now, rank: r, encrypted: encrypted(e.Channel)}
	q.push(w)
	d.stats.queued.Add(1)
	d.noteBacklog(ep)
	d.markReady(ep)
	return w
}

// unqueue takes w out of ep's queue; an event leaving it other than into a request is done with
// (see Deliver).
func (d *Dispatcher) unqueue(ep *endpoint, w *waiting) {
	w.ack.release()
	w.ack = nil
	ep.queue.remove(w)
	d.stats.queued.Add(-1)
	d.noteBacklog(ep)
}

// discard takes out a waiting event that will not be sent (shed, or expired behind a failing
// request). A discarded rise takes the endpoint out of its debounce entry's told set, so that the
// receiver, which never hears of the channel or member, does not hear of its removal either.
func (d *Dispatcher) discard(ep *endpoint, w *waiting) {
	d.unqueue(ep, w)
	if fallOf(w.ev.Name) != "" {
		d.untell(ep, w.ev)
	}
}

// dropped counts an event given up on under pressure and logs it, at most every 10 s per endpoint
// and reason, with the number held back since.
func (d *Dispatcher) dropped(ep *endpoint, reason DropReason, e pusher.WebhookEvent) {
	d.countDrop(ep.app.ID, reason, 1)
	t, msg := &ep.fullLog, "webhook endpoint queue full: event dropped"
	if reason == DropShed {
		t, msg = &ep.shedLog, "webhook endpoint queue full: a lower-value event was shed for a more valuable one"
	}
	if ok, held := t.allow(time.Now()); ok {
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", string(reason)).Str("event", e.Name).
			Int("queue_size", d.cfg.EndpointQueueSize).Int64("also_dropped_since_last_warning", held).Msg(msg)
	}
}

// noteBacklog moves ep into the backlogged state when its queue reaches backlogEvents, and out of
// it when the queue is empty.
func (d *Dispatcher) noteBacklog(ep *endpoint) {
	switch n := ep.queue.len(); {
	case !ep.backlogged && n >= min(backlogEvents, d.cfg.EndpointQueueSize):
		d.setBacklogged(ep, true)
	case ep.backlogged && n == 0:
		d.setBacklogged(ep, false)
	}
}

// setBacklogged keeps Stats.Backlogged and logs the change, entering at most every 10 s per endpoint.
func (d *Dispatcher) setBacklogged(ep *endpoint, on bool) {
	ep.backlogged = on
	if !on {
		d.stats.backlogged.Add(-1)
		d.log.Debug().Str("app_id", ep.app.ID).Str("url", ep.url).Msg("webhook endpoint caught up")
		return
	}
	d.stats.backlogged.Add(1)
	if ok, held := ep.backlogLog.allow(time.Now()); ok {
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", reasonBacklog).Int("queued", ep.queue.len()).
			Int("max_events", d.maxEvents(ep)).Int64("also_backlogged_since_last_warning", held).
			Msg("webhook endpoint backlogged: packing several events per request until it catches up")
	}
}

// reasonBacklog is the reason of the backlog warning.
const reasonBacklog = "backlog"
