package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"time"
)

// endpoint is one URL of one app with its filters and its queue of requests. The queue is sent in
// order, one request at a time: a request is sent only once the one before it was delivered or
// given up on. Everything but the static fields is owned by the run goroutine.
type endpoint struct {
	// Static after New.
	app     *app
	url     string
	types   map[string]bool // Pusher names
	prefix  string
	suffix  string
	headers map[string]string
	webman  bool

	queue    jobQueue
	inFlight bool   // the front request is with a worker
	retry    *entry // the back-off wait before the front request is tried again
	isReady  bool   // in Dispatcher.ready
	failing  bool   // the last attempt failed
	full     throttle
}

func newEndpoint(a *app, c Endpoint) *endpoint {
	ep := &endpoint{
		app: a, url: c.URL, prefix: c.ChannelPrefix, suffix: c.ChannelSuffix,
		headers: c.Headers, webman: c.Naming == NamingWebman, types: map[string]bool{},
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

// job is one request for one endpoint: a body signed once, sent as often as it takes.
type job struct {
	ep        *endpoint
	body      []byte
	signature string
	events    int
	created   time.Time
	attempts  int   // attempts completed
	err       error // the last attempt's outcome, written by the worker that made it
}

// enqueue adds a request to its endpoint's queue, or drops it when the queue is full.
func (d *Dispatcher) enqueue(ep *endpoint, j *job) {
	if ep.queue.len() >= d.cfg.EndpointQueueSize {
		d.stats.drop(DropEndpointQueueFull, j.events)
		if ok, held := ep.full.allow(time.Now()); ok {
			d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", string(DropEndpointQueueFull)).
				Int("queue_size", d.cfg.EndpointQueueSize).Int("events", j.events).Int64("also_dropped_since_last_warning", held).
				Msg("webhook endpoint queue full: request dropped")
		}
		return
	}
	ep.queue.push(j)
	d.queued++
	d.markReady(ep)
}

// markReady puts ep in line for a worker if it has a request and nothing in flight or waiting.
func (d *Dispatcher) markReady(ep *endpoint) {
	if !ep.isReady && !ep.inFlight && ep.retry == nil && ep.queue.len() > 0 {
		ep.isReady = true
		d.ready = append(d.ready, ep)
	}
}

// dispatch hands ready endpoints' front requests to idle workers; it never blocks, because at most
// Workers requests are outstanding and the work channel holds that many.
func (d *Dispatcher) dispatch() {
	for d.busy < d.cfg.Workers && len(d.ready) > 0 && !d.aborting {
		ep := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		ep.isReady = false
		j := ep.queue.front()
		if j.attempts > 0 {
			d.stats.retried.Add(1)
		}
		ep.inFlight = true
		d.busy++
		d.work <- j
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
		ep.queue.pop()
		d.queued--
		d.stats.delivered.Add(1)
		d.stats.deliveredEvents.Add(int64(j.events))
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
			Msg("webhook endpoint failing: retrying with back-off, later requests wait")
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

// giveUp drops the front request, whose retry window has passed, and with it the requests behind it
// whose windows passed while they waited for this failing endpoint.
func (d *Dispatcher) giveUp(ep *endpoint, j *job, now time.Time) {
	ep.queue.pop()
	d.queued--
	d.stats.drop(DropRetryExpired, j.events)
	d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Err(j.err).Str("reason", string(DropRetryExpired)).
		Int("attempts", j.attempts).Int("events", j.events).Dur("retry_for", d.cfg.RetryFor).
		Msg("webhook dropped: the endpoint failed for the whole retry window")
	var requests, events int
	for ep.queue.len() > 0 {
		next := ep.queue.front()
		if now.Before(next.created.Add(d.cfg.RetryFor)) {
			break
		}
		ep.queue.pop()
		d.queued--
		requests++
		events += next.events
	}
	if requests > 0 {
		d.stats.drop(DropRetryExpired, events)
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", string(DropRetryExpired)).
			Int("requests", requests).Int("events", events).
			Msg("webhooks dropped: their retry window passed while the endpoint was failing")
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
		j.err = d.post(j)
		d.results <- j
	}
}

// post makes one attempt; any answer but 2xx is an error.
func (d *Dispatcher) post(j *job) error {
	ctx, cancel := context.WithTimeout(d.attemptCtx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.url, bytes.NewReader(j.body))
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	for k, v := range j.ep.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", j.ep.app.Key)
	req.Header.Set("X-Pusher-Signature", j.signature)
	req.Header.Set("User-Agent", "Herald-Webhooks")
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: status %d", resp.StatusCode)
	}
	return nil
}

// jobQueue is a FIFO of requests.
type jobQueue struct {
	items []*job
	head  int
}

func (q *jobQueue) len() int    { return len(q.items) - q.head }
func (q *jobQueue) front() *job { return q.items[q.head] }
func (q *jobQueue) push(j *job) { q.items = append(q.items, j) }

func (q *jobQueue) pop() {
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// all yields the queued requests, front first.
func (q *jobQueue) all() iter.Seq[*job] {
	return func(yield func(*job) bool) {
		for _, j := range q.items[q.head:] {
			if !yield(j) {
				return
			}
		}
	}
}
