package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

const (
	defaultBatchWindow = 50 * time.Millisecond
	defaultBatchMax    = 50
)

// publish hands an event that survived the debounce to the app's batch, or straight to the
// endpoints when the app does not batch. An event on a private-encrypted- channel is never batched
// with others: the batch so far goes first, then the event alone, keeping the order.
func (d *Dispatcher) publish(a *app, e pusher.WebhookEvent) {
	if !a.Batching.Enabled {
		d.send(a, []pusher.WebhookEvent{e})
		return
	}
	if encrypted(e.Channel) {
		d.flush(a)
		d.send(a, []pusher.WebhookEvent{e})
		return
	}
	a.batch = append(a.batch, e)
	switch {
	case len(a.batch) >= a.Batching.MaxEvents:
		d.flush(a)
	case len(a.batch) == 1:
		a.batchFlush = d.sched.add(d.clock.Now().Add(a.Batching.Window), false, func() {
			a.batchFlush = nil
			d.flush(a)
		})
	}
}

// flush sends the app's batch in progress, if any.
func (d *Dispatcher) flush(a *app) {
	d.sched.cancel(a.batchFlush)
	a.batchFlush = nil
	if len(a.batch) == 0 {
		return
	}
	d.send(a, a.batch)
	a.batch = a.batch[:0]
}

// send makes one request per endpoint from events: each endpoint gets the events it accepts, under
// its naming, in a body encoded and signed for it alone (a filtered body is re-signed, never sent
// with the signature of another). time_ms is now, the request's creation.
func (d *Dispatcher) send(a *app, events []pusher.WebhookEvent) {
	now := d.clock.Now()
	var picked []pusher.WebhookEvent
	for _, ep := range a.endpoints {
		picked = picked[:0]
		for _, e := range events {
			if ep.accepts(e) {
				picked = append(picked, ep.rename(e))
			}
		}
		if len(picked) == 0 {
			continue
		}
		body, err := encodeWebhook(now, picked)
		if err != nil { // cannot happen: the body is strings and one int
			d.log.Error().Err(err).Str("app_id", a.ID).Msg("webhook encode failed")
			continue
		}
		d.enqueue(ep, &job{
			ep:        ep,
			body:      body,
			signature: auth.SignWebhook(a.Secret, body),
			events:    len(picked),
			created:   now,
		})
	}
}

// encodeWebhook is the exact body sent: {"time_ms":<int>,"events":[…]}. HTML characters are kept
// as they are, so the data of a client event reads the same as it was sent.
func encodeWebhook(now time.Time, events []pusher.WebhookEvent) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pusher.Webhook{TimeMs: now.UnixMilli(), Events: events}); err != nil {
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
