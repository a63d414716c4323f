// Package webhooks delivers Pusher webhooks: channel_occupied, channel_vacated, member_added,
// member_removed, client_event, cache_miss and subscription_count, signed the way the server SDKs
// verify them, so that an application tracking who is online gets neither a lost nor a spurious event.
//
// The flow:
//
//	Emit ──▶ debounce ──▶ per endpoint: filter ──▶ event queue ──▶ take (batch, pack) ──▶ worker:
//	     encode, sign, POST ──▶ 2xx, or back-off and retry
//
// Emit does the bookkeeping itself, under the dispatcher's lock, in bounded time and without I/O:
// there is no queue in front of it to overflow, so one app's flood costs only the goroutines that
// cause it and fills only that app's endpoint queues. channel_vacated and member_removed wait
// RemovalDelay (3 s) and are cancelled, with the matching channel_occupied or member_added, when
// the channel or member comes back within it: a page reload is not an offline event.
//
// Each endpoint has its own bounded queue of events, not of requests: an event becomes part of a
// request only when a worker is free for the endpoint, and is encoded and signed by that worker. Until
// then a removal cancels the addition it follows (neither is sent), a newer subscription_count
// replaces the one waiting, and under pressure the least valuable waiting event (the cheapest an
// anonymous client can cause: public-channel occupancy) is shed for a more valuable one, so that
// member events survive an occupancy flood. An addition that is shed or dropped takes its removal
// with it: a receiver never sees a removal without the addition before it. When an endpoint falls
// behind it is backlogged: its requests carry up to 50 events each even if the app does not batch
// (a batching app's go at once, up to its MaxEvents), until it has caught up (Stats.Backlogged,
// Stats.Packed, and a warning).
//
// Each endpoint receives its requests in order, one at a time; a failed request is retried with
// exponential back-off and jitter for RetryFor (5 min) before it is dropped (counted and logged),
// and the events behind it wait, so a receiver never sees a member_removed before the member_added
// it follows. Shutdown sends pending removals at once and delivers until its deadline, then counts
// and logs whatever is left.
//
// The package does not import channels: a *Dispatcher satisfies channels.Hooks structurally.
package webhooks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/pusher"
)

// Dispatcher turns the server's lifecycle events into webhook requests and delivers them.
type Dispatcher struct {
	// Static after New.
	cfg     Config
	log     zerolog.Logger
	clock   Clock
	wake    chan struct{} // capacity 1: the timer was replaced, the loop must wait on the new one
	stop    chan context.Context
	done    chan struct{}
	work    chan *job // to the workers; never more than Workers outstanding, so a send never blocks
	results chan *job // from the workers
	workers sync.WaitGroup

	// attemptCtx is the parent of every attempt; cancelled when the shutdown deadline passes.
	attemptCtx     context.Context
	cancelAttempts context.CancelFunc

	stats counters

	// apps is the configuration of the moment: read without mu to ignore unwanted events at once,
	// replaced by Reload under mu (so under mu it is the one the state below belongs to).
	apps atomic.Pointer[appSet]

	// mu guards everything below, and the state of every app and endpoint. Emit, the loop and
	// Shutdown take it; it is never held across I/O, encoding or a channel operation that can
	// block, so Emit returns in bounded time.
	mu        sync.Mutex
	closed    atomic.Bool // Shutdown was called: Emit drops (set under mu, read without it too)
	closing   bool        // the loop has begun shutting down: removals and batches go out at once
	aborting  bool        // the shutdown deadline has passed
	occupancy map[occKey]*occupancy
	sched     schedule
	timer     Timer       // armed for the earliest entry of sched; nil when sched is empty
	timerAt   time.Time   // its deadline
	ready     []*endpoint // endpoints with a request to send and nothing in flight or backing off
	busy      int         // requests with a worker
	jobs      int         // requests taken from a queue and not yet delivered or given up
	retired   []*endpoint // endpoints a Reload removed, delivering what they already held

	// result is what Shutdown returns; written by run before it closes done.
	result error
}

// appSet is the configured apps, by id and in configuration order. Never modified once stored.
type appSet struct {
	byID map[string]*app
	list []*app
}

// app is one app's configuration and endpoints. Never modified once in an appSet, but for its
// endpoints' state (guarded by Dispatcher.mu).
type app struct {
	App
	endpoints []*endpoint
	// wanted holds the event types some endpoint receives, with both halves of a debounced pair
	// (occupied/vacated, added/removed) whenever either is wanted: the debounce needs both.
	wanted map[string]bool
}

// New validates cfg and starts the dispatcher's loop and workers. The error names the app and the
// field at fault.
func New(cfg Config) (*Dispatcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	attemptCtx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg:            cfg,
		log:            *cfg.Logger,
		clock:          cfg.Clock,
		wake:           make(chan struct{}, 1),
		stop:           make(chan context.Context),
		done:           make(chan struct{}),
		work:           make(chan *job, cfg.Workers),
		results:        make(chan *job, cfg.Workers),
		attemptCtx:     attemptCtx,
		cancelAttempts: cancel,
		occupancy:      map[occKey]*occupancy{},
	}
	d.apps.Store(newAppSet(cfg.Apps, nil))
	d.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go d.worker()
	}
	go d.run()
	return d, nil
}

func newApp(c App) *app {
	a := &app{App: c, wanted: map[string]bool{}}
	setDefault(&a.Batching.Window, defaultBatchWindow)
	setDefault(&a.Batching.MaxEvents, defaultBatchMax)
	for i, ec := range c.Endpoints {
		ep := newEndpoint(a, i, ec)
		a.endpoints = append(a.endpoints, ep)
		for t := range ep.types {
			a.wanted[t] = true
		}
	}
	for _, pair := range [][2]string{
		{pusher.WebhookChannelOccupied, pusher.WebhookChannelVacated},
		{pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved},
	} {
		if a.wanted[pair[0]] || a.wanted[pair[1]] {
			a.wanted[pair[0]], a.wanted[pair[1]] = true, true
		}
	}
	return a
}

// Emit accepts one lifecycle event of an app. It never blocks: events of apps without webhooks, or
// of types no endpoint receives, are ignored at once; the others go through the debounce into the
// endpoints' queues, which shed or drop (counted, logged at most every 10 s) rather than grow. It
// satisfies channels.Hooks.
func (d *Dispatcher) Emit(appID string, e pusher.WebhookEvent) {
	if a := d.apps.Load().byID[appID]; a == nil || !a.wanted[e.Name] {
		return
	}
	if d.closed.Load() { // without waiting for the lock, which Shutdown's flush holds for a while
		d.countDrop(appID, DropShutdown, 1)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		d.countDrop(appID, DropShutdown, 1)
		return
	}
	a := d.apps.Load().byID[appID] // again: a Reload may have come between
	if a == nil || !a.wanted[e.Name] {
		return
	}
	d.handle(a, e, d.clock.Now())
	d.settle()
}

// Stats returns a snapshot of the counters. Safe to call at any time, also after Shutdown.
func (d *Dispatcher) Stats() Stats { return d.stats.snapshot() }

// Shutdown stops accepting events, sends pending removals and batches at once, and delivers until
// everything is delivered or ctx ends. Then it cancels what is in flight, counts and logs what was
// not delivered (reason shutdown), and returns an error saying how many events were lost. It is
// idempotent; later calls wait for the first to finish and return its result.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	first := !d.closed.Swap(true)
	d.mu.Unlock()
	if first {
		d.stop <- ctx
	}
	<-d.done
	return d.result
}

// run is the loop: it takes the workers' results, fires scheduled actions (removals, batching
// windows, retries) when the timer goes off, and shuts down.
func (d *Dispatcher) run() {
	defer close(d.done)
	var stopCtx context.Context
loop:
	for {
		d.mu.Lock()
		if d.closing && d.stats.queued.Load() == 0 && d.jobs == 0 {
			d.mu.Unlock()
			break
		}
		var timerC <-chan time.Time
		if d.timer != nil {
			timerC = d.timer.C()
		}
		d.mu.Unlock()
		stopC, deadline := d.stop, (<-chan struct{})(nil)
		if stopCtx != nil {
			stopC, deadline = nil, stopCtx.Done()
		}
		select {
		case <-d.wake:
		case j := <-d.results:
			d.locked(func() { d.complete(j) })
		case <-timerC:
			d.locked(func() {
				if d.timer != nil && d.timer.C() == timerC {
					d.timer = nil
				}
				d.fireDue()
			})
		case stopCtx = <-stopC:
			d.locked(d.beginClosing)
		case <-deadline:
			d.mu.Lock()
			d.result = d.abort(stopCtx)
			d.mu.Unlock()
			break loop
		}
	}
	close(d.work)
	d.workers.Wait()
	d.cancelAttempts()
}

// locked runs fn under mu and settles before unlocking.
func (d *Dispatcher) locked(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn()
	d.settle()
}

// settle ends every section under mu: it hands ready requests to idle workers and keeps the timer
// armed for the earliest scheduled action, waking the loop when the timer was replaced. Because the
// timer always matches the schedule once mu is released, a test that takes mu sees it settled.
func (d *Dispatcher) settle() {
	d.dispatch()
	at, ok := d.sched.next()
	if ok == (d.timer != nil) && (!ok || at.Equal(d.timerAt)) {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if ok {
		d.timer, d.timerAt = d.clock.NewTimer(at.Sub(d.clock.Now())), at
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// fireBatch bounds the scheduled actions fired under one hold of mu. A flood leaves thousands of
// removals due at once; with more than this due, the timer fires again at once and Emit waits for
// one batch at most.
const fireBatch = 256

// fireDue runs up to fireBatch scheduled actions whose deadline has passed, earliest first.
func (d *Dispatcher) fireDue() {
	now := d.clock.Now()
	for range fireBatch {
		e := d.sched.popDue(now)
		if e == nil {
			return
		}
		e.fire()
	}
}

// beginClosing sends pending removals and batches at once, in the order they would have gone.
// Retries keep their back-off.
func (d *Dispatcher) beginClosing() {
	d.closing = true
	var retries []*entry
	for e := d.sched.popAny(); e != nil; e = d.sched.popAny() {
		if e.retry {
			retries = append(retries, e)
			continue
		}
		e.fire()
	}
	for _, e := range retries {
		d.sched.readd(e)
	}
}

// abort ends a shutdown whose deadline has passed: in-flight attempts are cancelled and everything
// not delivered is counted and logged. Called with mu held; it lets go of it while it waits for the
// workers.
func (d *Dispatcher) abort(ctx context.Context) error {
	d.aborting = true
	d.cancelAttempts()
	for d.busy > 0 {
		d.mu.Unlock()
		j := <-d.results
		d.mu.Lock()
		d.complete(j)
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	var lost int
	var endpoints []*endpoint
	for _, a := range d.apps.Load().list {
		endpoints = append(endpoints, a.endpoints...)
	}
	for _, ep := range append(endpoints, d.retired...) {
		events := ep.queue.len()
		if ep.job != nil {
			events += len(ep.job.events)
		}
		for w := ep.queue.front(); w != nil; w = ep.queue.front() {
			w.ack = nil      // not done with: the outbox keeps it for another node
			d.unqueue(ep, w) // keeps the gauges true after Shutdown
		}
		if events == 0 {
			continue
		}
		lost += events
		d.countDrop(ep.app.ID, DropShutdown, events)
		d.log.Warn().Str("app_id", ep.app.ID).Str("url", ep.url).Str("reason", string(DropShutdown)).
			Int("events", events).Msg("webhooks undelivered at shutdown: dropped")
	}
	if lost == 0 {
		return nil
	}
	return fmt.Errorf("webhooks shutdown: %d events undelivered: %w", lost, ctx.Err())
}
