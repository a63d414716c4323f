package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/herald-rt/herald/pusher"
)

const (
	defaultBatchWindow = 50 * time.Millisecond
	defaultBatchMax    = 50
)

// packMax is how many events a request of a backlogged endpoint carries when its app does not
// batch: the default batch. Every server SDK's webhook helper takes an events array of any length.
const packMax = defaultBatchMax

// maxEvents is how many events ep's next request may carry.
func (d *Dispatcher) maxEvents(ep *endpoint) int {
	switch {
	case ep.app.Batching.Enabled:
		return ep.app.Batching.MaxEvents
	case ep.backlogged:
		return packMax
	}
	return 1
}

// sendAt says whether ep's waiting events must wait, and until when: a batching app's first waiting
// event waits out its window for others, unless the batch is already full, an encrypted event is
// waiting (it cuts the batch, which goes at once), the endpoint is backlogged or the dispatcher is
// closing.
func (d *Dispatcher) sendAt(ep *endpoint) (time.Time, bool) {
	b := ep.app.Batching
	if !b.Enabled || d.closing || ep.backlogged || ep.queue.len() >= b.MaxEvents || ep.queue.encrypted > 0 {
		return time.Time{}, false
	}
	return ep.queue.front().at.Add(b.Window), true
}

// take makes ep's next request from the front of its queue: up to maxEvents events in the order they
// occurred, where an event on a private-encrypted- channel always travels alone (pusher-http-php
// throws on one without data, losing every other event of its request).
func (d *Dispatcher) take(ep *endpoint) *job {
	d.sched.cancel(ep.window)
	ep.window = nil
	q := &ep.queue
	if !ep.backlogged && q.len() > 1 && d.clock.Now().Sub(q.front().at) >= backlogAge {
		d.setBacklogged(ep, true)
	}
	limit := d.maxEvents(ep)
	j := &job{ep: ep, app: ep.app, created: q.front().at}
	for w := q.front(); w != nil && len(j.events) < limit; w = q.front() {
		if w.encrypted && len(j.events) > 0 {
			break
		}
		if w.ack != nil { // it travels with the request now
			j.acks = append(j.acks, w.ack)
			w.ack = nil
		}
		d.unqueue(ep, w)
		j.events = append(j.events, w.ev)
		if w.encrypted {
			break
		}
	}
	if len(j.events) > 1 && !ep.app.Batching.Enabled {
		d.stats.packed.Add(1)
	}
	return j
}

// encodeWebhook is the exact body sent: {"time_ms":<int>,"events":[…]}. HTML characters are kept
// as they are, so the data of a client event reads the same as it was sent.
func encodeWebhook(created time.Time, events []pusher.WebhookEvent) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pusher.Webhook{TimeMs: created.UnixMilli(), Events: events}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func encrypted(channel string) bool {
	kind, _ := pusher.KindOf(channel)
	return kind == pusher.KindEncrypted
}

// accepts reports whether the endpoint receives e: its type is listed and its channel passes the
// prefix and suffix filters.
func (ep *endpoint) accepts(e pusher.WebhookEvent) bool {
	return ep.types[e.Name] &&
		strings.HasPrefix(e.Channel, ep.prefix) && strings.HasSuffix(e.Channel, ep.suffix)
}

// rename gives e the endpoint's name for it.
func (ep *endpoint) rename(e pusher.WebhookEvent) pusher.WebhookEvent {
	if ep.webman {
		if n, ok := toWebman[e.Name]; ok {
			e.Name = n
		}
	}
	return e
}
