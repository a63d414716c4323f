package webhooks

import "github.com/herald-rt/herald/pusher"

// Deliver queues an event that a cluster's outbox recorded once for the whole cluster (see
// channels/redis), and calls done once every endpoint is finished with it: delivered, given up on
// (its retry window passed, or it was shed or dropped under pressure, all counted and logged as for
// Emit), or cancelled by its pair while both waited. The outbox acknowledges the event then; an event
// this node never finished (it died, or shut down first) stays in the outbox for the next node.
//
// The cluster has applied the removal delay already, so Deliver does not debounce; a removal still
// meets its addition in an endpoint's queue and the two cancel out there. done runs on a goroutine
// of its own, never under the dispatcher's lock; it is not called for an event that arrives after
// Shutdown.
func (d *Dispatcher) Deliver(appID string, e pusher.WebhookEvent, done func()) {
	if d.closed.Load() {
		return
	}
	if a := d.apps.Load().byID[appID]; a == nil || !a.wanted[e.Name] {
		done()
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return
	}
	a := d.apps.Load().byID[appID] // again: a Reload may have come between
	if a == nil || !a.wanted[e.Name] {
		go done()
		return
	}
	now := d.clock.Now()
	finished := &ack{pending: 1, done: done} // held until every endpoint has its copy
	rise := riseOf(e.Name)
	for _, ep := range a.endpoints {
		if !ep.accepts(e) {
			continue
		}
		if rise != "" {
			if w := ep.queue.find(keyAs(rise, e)); w != nil {
				d.unqueue(ep, w)
				d.stats.coalesced.Add(2)
				continue
			}
		}
		if w := d.enqueue(ep, e, now); w != nil && w.ack != finished {
			// A newer subscription_count replaced a waiting one: the older entry is done with.
			w.ack.release()
			w.ack = finished
			finished.pending++
		}
	}
	finished.release()
	d.settle()
}

// ack is one outbox event's acknowledgement: it is due once each endpoint that queued the event is
// done with it. Guarded by Dispatcher.mu.
type ack struct {
	pending int
	done    func()
}

// release marks one holder done; the last runs done. Safe on nil.
func (a *ack) release() {
	if a == nil {
		return
	}
	if a.pending--; a.pending == 0 {
		go a.done() // its I/O must not run under the dispatcher's lock
	}
}

func releaseAll(acks []*ack) {
	for _, a := range acks {
		a.release()
	}
}
