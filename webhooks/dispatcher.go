// Package webhooks delivers Pusher webhooks: channel_occupied, channel_vacated, member_added,
// member_removed, client_event, cache_miss and subscription_count, signed the way the server SDKs
// verify them, so that an application tracking who is online gets neither a lost nor a spurious event.
//
// The flow, all of it owned by one loop goroutine except the HTTP attempts:
//
//	Emit ──(bounded queue)──▶ debounce ──▶ batch (per app) ──▶ filter, rename, encode, sign
//	     (per endpoint) ──▶ endpoint queue ──▶ worker pool ──▶ POST ──▶ 2xx, or back-off and retry
//
// Emit never blocks: it hands the event to a bounded queue, and an overflow is counted and logged.
// channel_vacated and member_removed wait RemovalDelay (3 s) and are cancelled, with the matching
// channel_occupied or member_added, when the channel or member comes back within it: a page reload
// is not an offline event. Each endpoint receives its requests in order, one at a time; a failed
// request is retried with exponential back-off and jitter for RetryFor (5 min) before it is dropped
// (counted and logged), and the requests behind it wait, so a receiver never sees a member_removed
// before the member_added it follows. Shutdown sends pending removals at once and delivers until its
// deadline, then counts and logs whatever is left.
//
// The package does not import channels: a *Dispatcher satisfies channels.Hooks structurally.
package webhooks

import (
	"context"
	"fmt"
	"sync"
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
	apps    map[string]*app
	appList []*app // apps in configuration order
	in      chan input
	stop    chan context.Context
	done    chan struct{}
	work    chan *job // to the workers; never more than Workers outstanding
	results chan *job // from the workers
	workers sync.WaitGroup

	// attemptCtx is the parent of every attempt; cancelled when the shutdown deadline passes.
	attemptCtx     context.Context
	cancelAttempts context.CancelFunc

	stats    counters
	overflow throttle

	// Guarded by mu: Emit sends only while closed is false, so nothing enters the queue after
	// Shutdown has begun draining it.
	mu     sync.RWMutex
	closed bool

	// Owned by the run goroutine.
	sched     schedule
	occupancy map[occKey]*occupancy
	ready     []*endpoint // endpoints with a request to send and nothing in flight or backing off
	busy      int         // requests handed to workers and not yet completed
	queued    int         // requests waiting in endpoint queues, in flight included
	closing   bool        // Shutdown has begun: removals and batches go out at once
	aborting  bool        // the shutdown deadline has passed
	acks      []chan struct{}

	// result is what Shutdown returns; written by run before it closes done.
	result error
}

// app is one app's configuration and its batch in progress.
type app struct {
	App
	endpoints []*endpoint
	// wanted holds the event types some endpoint receives, with both halves of a debounced pair
	// (occupied/vacated, added/removed) whenever either is wanted: the debounce needs both.
	wanted map[string]bool

	batch      []pusher.WebhookEvent // owned by the run goroutine
	batchFlush *entry
}

// input is one emitted event on its way to the loop, or (ack set) a test's barrier.
type input struct {
	app *app
	ev  pusher.WebhookEvent
	ack chan struct{}
	fn  func() // run by the loop with a barrier
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
		apps:           map[string]*app{},
		in:             make(chan input, cfg.QueueSize),
		stop:           make(chan context.Context),
		done:           make(chan struct{}),
		work:           make(chan *job, cfg.Workers),
		results:        make(chan *job, cfg.Workers),
		attemptCtx:     attemptCtx,
		cancelAttempts: cancel,
		occupancy:      map[occKey]*occupancy{},
	}
	for _, ac := range cfg.Apps {
		a := newApp(ac)
		if len(a.endpoints) == 0 {
			continue
		}
		d.apps[a.ID] = a
		d.appList = append(d.appList, a)
	}
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
	for _, ec := range c.Endpoints {
		ep := newEndpoint(a, ec)
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
// of types no endpoint receives, are ignored at once, and when the queue is full the event is
// dropped, counted (queue_full) and logged at most every 10 s. It satisfies channels.Hooks.
func (d *Dispatcher) Emit(appID string, e pusher.WebhookEvent) {
	a := d.apps[appID]
	if a == nil || !a.wanted[e.Name] {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.stats.drop(DropShutdown, 1)
		return
	}
	select {
	case d.in <- input{app: a, ev: e}:
	default:
		d.stats.drop(DropQueueFull, 1)
		if ok, held := d.overflow.allow(time.Now()); ok {
			d.log.Warn().Str("app_id", appID).Str("reason", string(DropQueueFull)).Int("queue_size", d.cfg.QueueSize).
				Int64("also_dropped_since_last_warning", held).Msg("webhook queue full: event dropped")
		}
	}
}

// Stats returns a snapshot of the counters. Safe to call at any time, also after Shutdown.
func (d *Dispatcher) Stats() Stats { return d.stats.snapshot() }

// Shutdown stops accepting events, sends pending removals and batches at once, and delivers until
// everything is delivered or ctx ends. Then it cancels what is in flight, counts and logs what was
// not delivered (reason shutdown), and returns an error saying how many events were lost. It is
// idempotent; later calls wait for the first to finish and return its result.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	first := !d.closed
	d.closed = true
	d.mu.Unlock()
	if first {
		d.stop <- ctx
	}
	<-d.done
	return d.result
}

// run is the loop: it owns the debounce state, the batches, the endpoint queues and the schedule.
func (d *Dispatcher) run() {
	defer close(d.done)
	defer func() {
		for _, ack := range d.acks {
			close(ack)
		}
		close(d.work)
		d.workers.Wait()
		d.cancelAttempts()
	}()
	var (
		timer   Timer
		timerAt int64 // UnixNano of the armed timer's deadline
		stopCtx context.Context
	)
	for {
		d.dispatch()
		if d.closing && d.queued == 0 {
			return
		}
		var timerC <-chan time.Time
		if at, ok := d.sched.next(); ok {
			if timer == nil || at.UnixNano() != timerAt {
				if timer != nil {
					timer.Stop()
				}
				timer, timerAt = d.clock.NewTimer(at.Sub(d.clock.Now())), at.UnixNano()
			}
			timerC = timer.C()
		} else if timer != nil {
			timer.Stop()
			timer = nil
		}
		for _, ack := range d.acks {
			close(ack)
		}
		d.acks = nil
		stopC, deadline := d.stop, (<-chan struct{})(nil)
		if stopCtx != nil {
			stopC, deadline = nil, stopCtx.Done()
		}
		select {
		case in := <-d.in:
			d.receive(in)
		case j := <-d.results:
			d.complete(j)
		case <-timerC:
			timer = nil
			d.fireDue()
		case stopCtx = <-stopC:
			d.beginClosing()
		case <-deadline:
			d.result = d.abort(stopCtx)
			return
		}
	}
}

func (d *Dispatcher) receive(in input) {
	if in.ack != nil {
		if in.fn != nil {
			in.fn()
		}
		d.acks = append(d.acks, in.ack)
		return
	}
	d.handle(in.app, in.ev)
}

// barrier returns once the loop has processed every event emitted before it, run fn (when not
// nil) and armed its timer for what they scheduled. Tests use it to know the dispatcher is idle
// before moving a fake clock, and to read loop-owned state.
func (d *Dispatcher) barrier(fn ...func()) {
	ack := make(chan struct{})
	in := input{ack: ack}
	if len(fn) > 0 {
		in.fn = fn[0]
	}
	d.in <- in
	<-ack
}

// fireDue runs every scheduled action whose deadline has passed, earliest first.
func (d *Dispatcher) fireDue() {
	now := d.clock.Now()
	for e := d.sched.popDue(now); e != nil; e = d.sched.popDue(now) {
		e.fire()
	}
}

// beginClosing sends pending removals and batches at once, in the order they would have gone, then
// processes the events still queued (their removals, now immediate, come after the pending ones).
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
	for drained := false; !drained; {
		select {
		case in := <-d.in:
			d.receive(in)
		default:
			drained = true
		}
	}
	for _, a := range d.appList {
		d.flush(a)
	}
}

// abort ends a shutdown whose deadline has passed: in-flight attempts are cancelled and everything
// not delivered is counted and logged.
func (d *Dispatcher) abort(ctx context.Context) error {
	d.aborting = true
	d.cancelAttempts()
	for d.busy > 0 {
		d.complete(<-d.results)
	}
	var lost int
	for _, a := range d.appList {
		for _, ep := range a.endpoints {
			requests, events := ep.queue.len(), 0
			for j := range ep.queue.all() {
				events += j.events
			}
			if requests == 0 {
				continue
			}
			lost += events
			d.stats.drop(DropShutdown, events)
			d.log.Warn().Str("app_id", a.ID).Str("url", ep.url).Str("reason", string(DropShutdown)).
				Int("requests", requests).Int("events", events).Msg("webhooks undelivered at shutdown: dropped")
		}
	}
	if lost == 0 {
		return nil
	}
	return fmt.Errorf("webhooks shutdown: %d events undelivered: %w", lost, ctx.Err())
}
