package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// endpoint is one URL of one app with its filters, its queue of events and its request. Requests
// are sent in order, one at a time: the next is taken from the queue only once the one before it
// was delivered or given up on.
type endpoint struct {
	// Guarded by Dispatcher.mu: a Reload that keeps the endpoint for its app's new configuration
	// changes them.
	app *app
	bit uint64 // 1 << its index among the app's endpoints, for occupancy.told

	// Static after New.
	url     string
	types   map[string]bool // Pusher names
	prefix  string
	suffix  string
	headers map[string]string
	webman  bool

	// Guarded by Dispatcher.mu.
	queue      eventQueue
	job        *job   // the request taken from the queue: with a worker (inFlight) or backing off (retry)
	inFlight   bool   // job is with a worker
	retry      *entry // the back-off wait before job is tried again
	window     *entry // a batching app's wait for more events before the front ones go
	isReady    bool   // in Dispatcher.ready
	failing    bool   // the last attempt failed
	backlogged bool   // see backlogEvents

	// Safe for concurrent use.
	shedLog, fullLog, backlogLog throttle
}

func newEndpoint(a *app, index int, c Endpoint) *endpoint {
	ep := &endpoint{
		app: a, bit: 1 << index, url: c.URL, prefix: c.ChannelPrefix, suffix: c.ChannelSuffix,
		headers: c.Headers, webman: c.Naming == NamingWebman, types: map[string]bool{}, queue: newEventQueue(),
	}
	types := c.EventTypes
	if len(types) == 0 {
		types = EventTypes
		if ep.webman {
			types = webmanTypes
		}
	}
	for _, t := range types {
		ep.types[aliases[t]] = true
	}
	return ep
}

// job is one request for one endpoint: events taken from its queue, encoded and signed once by the
// worker of the first attempt, sent as often as it takes. The worker making an attempt owns body,
// signature and err; the dispatcher, under mu, everything else.
type job struct {
	ep        *endpoint
	app       *app                  // ep's app when the job was taken: its key and secret sign it
	events    []pusher.WebhookEvent // Pusher's names; renamed for the endpoint when encoded
	created   time.Time             // when its first event was queued: time_ms, and the start of the retry window
	attempts  int                   // attempts completed
	body      []byte
	signature string
	err       error  // the last attempt's outcome
	acks      []*ack // of the outbox events it carries, released once it is delivered or given up on
}

// markReady puts ep in line for a worker if it has a request to send, or events that need not wait
// for a batching window, and nothing in flight or backing off.
func (d *Dispatcher) markReady(ep *endpoint) {
	if ep.isReady || ep.inFlight || ep.retry != nil {
		return
	}
	if ep.job == nil {
		if ep.queue.len() == 0 {
			return
		}
		if at, wait := d.sendAt(ep); wait && at.After(d.clock.Now()) {
			if ep.window == nil {
				ep.window = d.sched.add(at, false, func() {
					ep.window = nil
					d.markReady(ep)
				})
			}
			return
		}
	}
	ep.isReady = true
	d.ready = append(d.ready, ep)
}

// dispatch hands ready endpoints' requests to idle workers, taking a new request from the queue
// where there is none; it never blocks, because at most Workers requests are outstanding and the
// work channel holds that many.
func (d *Dispatcher) dispatch() {
	for d.busy < d.cfg.Workers && len(d.ready) > 0 && !d.aborting {
		ep := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		ep.isReady = false
		if ep.job == nil {
			if ep.queue.len() == 0 {
				continue // its events cancelled out while it waited for a worker
			}
			ep.job = d.take(ep)
			d.jobs++
		}
		if ep.job.attempts > 0 {
			d.stats.retried.Add(1)
		}
		ep.inFlight = true
		d.busy++
		d.work <- ep.job
	}
	if len(d.ready) == 0 {
		d.ready = nil // let the backing array go
	}
}

// complete takes a worker's result: delivered, or retried after a back-off, or dropped once the
// retry window has passed.
func (d *Dispatcher) complete(j *job) {
	ep := j.ep
	ep.inFlight = false
	d.busy--
	j.attempts++
	if j.err == nil {
		ep.job = nil
		d.jobs--
		releaseAll(j.acks)
		d.stats.delivered.Add(1)
		d.stats.deliveredEvents.Add(int64(len(j.events)))
		if ep.failing {
			ep.failing = false
			d.log.Info().Str("app_id", ep.app.ID).Str("url", ep.url).Int("attempts", j.attempts).Msg("webhook endpoint recovered")
		}
		d.markReady(ep)
		return
	}
	if d.aborting {
		return // counted as undelivered by abort
	}
	if !ep.failing {
		ep.failing = true
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Err(j.err).
			Msg("webhook endpoint failing: retrying with back-off, later events wait")
	}
	now := d.clock.Now()
	deadline := j.created.Add(d.cfg.RetryFor)
	if !now.Before(deadline) {
		d.giveUp(ep, j, now)
		d.markReady(ep)
		return
	}
	at := now.Add(backoff(j.attempts, d.cfg.RetryBackoff, d.cfg.RetryBackoffMax))
	if at.After(deadline) {
		at = deadline // one last attempt at the end of the window
	}
	d.log.Debug().Str("app_id", ep.app.ID).Str("url", ep.url).Err(j.err).Int("attempts", j.attempts).
		Dur("retry_in", at.Sub(now)).Msg("webhook attempt failed")
	ep.retry = d.sched.add(at, true, func() {
		ep.retry = nil
		d.markReady(ep)
	})
}

// giveUp drops the request, whose retry window has passed, and with it the waiting removals of the
// additions it carried (the receiver never heard of those) and the waiting events whose windows
// passed while they waited for this failing endpoint.
func (d *Dispatcher) giveUp(ep *endpoint, j *job, now time.Time) {
	ep.job = nil
	d.jobs--
	releaseAll(j.acks)
	d.countDrop(ep.app.ID, DropRetryExpired, len(j.events))
	d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Err(j.err).Str("reason", string(DropRetryExpired)).
		Int("attempts", j.attempts).Int("events", len(j.events)).Dur("retry_for", d.cfg.RetryFor).
		Msg("webhook dropped: the endpoint failed for the whole retry window")
	behind := 0
	for _, e := range j.events {
		if fall := fallOf(e.Name); fall != "" {
			if w := ep.queue.find(keyAs(fall, e)); w != nil {
				d.unqueue(ep, w)
				behind++
			} else if ep.queue.find(keyAs(e.Name, e)) == nil {
				d.untell(ep, e)
			}
		}
	}
	for w := ep.queue.front(); w != nil && !now.Before(w.at.Add(d.cfg.RetryFor)); w = ep.queue.front() {
		d.discard(ep, w)
		behind++
	}
	if behind > 0 {
		d.countDrop(ep.app.ID, DropRetryExpired, behind)
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", string(DropRetryExpired)).Int("events", behind).
			Msg("webhooks dropped behind a failing request: expired while waiting, or removals of additions never delivered")
	}
}

// backoff is the wait after the n-th failed attempt: base doubled per attempt up to ceiling, then
// jittered to between half and all of it, so that many senders do not retry in step.
func backoff(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + rand.N(d-half+1)
}

// worker makes attempts until the work channel closes.
func (d *Dispatcher) worker() {
	defer d.workers.Done()
	for j := range d.work {
		var err error
		if j.body == nil {
			err = j.encode()
		}
		if err == nil {
			start := time.Now()
			var status int
			status, err = d.post(j)
			if d.cfg.Observer != nil {
				d.cfg.Observer.Attempt(j.app.ID, Attempt{URL: j.ep.url, Events: j.events, N: j.attempts + 1,
					Status: status, Err: err, Duration: time.Since(start)})
			}
		}
		j.err = err
		d.results <- j
	}
}

// encode makes the request's body under the endpoint's names and signs it: one body per endpoint,
// so a filtered body is signed on its own, never sent with the signature of another.
func (j *job) encode() error {
	events := make([]pusher.WebhookEvent, len(j.events))
	for i, e := range j.events {
		events[i] = j.ep.rename(e)
	}
	body, err := encodeWebhook(j.created, events)
	if err != nil { // cannot happen: the body is strings and ints
		return fmt.Errorf("webhook encode: %w", err)
	}
	j.body, j.signature = body, auth.SignWebhook(j.app.Secret, body)
	return nil
}

// post makes one attempt and returns the endpoint's status; any answer but 2xx is an error.
func (d *Dispatcher) post(j *job) (int, error) {
	ctx, cancel := context.WithTimeout(d.attemptCtx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("webhook post: %w", err)
	}
	for k, v := range j.ep.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", j.app.Key)
	req.Header.Set("X-Pusher-Signature", j.signature)
	req.Header.Set("User-Agent", "Herald-Webhooks")
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook post: status %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
