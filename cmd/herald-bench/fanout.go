package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/clients"
)

// fanoutEvent is the event name the fanout bench publishes.
const fanoutEvent = "bench-fanout"

// fanoutResult is the JSON line of a fanout run.
type fanoutResult struct {
	Bench          string    `json:"bench"`
	Label          string    `json:"label"`
	Subscribers    int       `json:"subscribers"`
	Connected      int64     `json:"connected"`
	ConnectFailed  int64     `json:"connect_failed"`
	Events         int       `json:"events"`
	Published      int64     `json:"published"`
	PublishErrors  int64     `json:"publish_errors"`
	PayloadBytes   int       `json:"payload_bytes"`
	RateHz         float64   `json:"rate"` // 0: as fast as the window allows
	Inflight       int       `json:"inflight"`
	Window         int       `json:"window"`
	Expected       int64     `json:"expected"`
	Delivered      int64     `json:"delivered"`
	Lost           int64     `json:"lost"`
	Duplicated     int64     `json:"duplicated"`
	Other          int64     `json:"other_events"` // anything but the bench event after subscribing
	Disconnected   int       `json:"disconnected"` // connections the server ended during the run
	Stalled        bool      `json:"stalled"`      // deliveries stopped progressing before the end
	PacerLagged    int64     `json:"pacer_lagged"` // events the publisher could not send on time
	Seconds        float64   `json:"seconds"`      // first publish to last delivery
	DeliveredPerS  float64   `json:"delivered_per_sec"`
	Latency        latencyMS `json:"latency_ms"`
	ServerPID      processes `json:"pid,omitempty"`
	FirstFailure   string    `json:"first_failure,omitempty"`
	FirstPubFailed string    `json:"first_publish_failure,omitempty"`
	// ConsoleEvents and ConsoleBatches are what a debug console watching the app (--console) received.
	ConsoleEvents  int64 `json:"console_events,omitempty"`
	ConsoleBatches int64 `json:"console_batches,omitempty"`
	serverCost
}

// fanoutRun is the state the subscribers' readers share.
type fanoutRun struct {
	events int
	tally
	lastAt atomic.Int64 // sinceEpoch of the latest delivery
}

// fanoutSub is one subscriber: its reader alone writes seen.
type fanoutSub struct {
	run   *fanoutRun
	index int
	ready atomic.Bool // subscribed: from now on every event is consumed here
	seen  seqSet
}

func (s *fanoutSub) onEvent(ev clients.Event) bool {
	if ev.Event != fanoutEvent {
		if !s.ready.Load() {
			return false // subscription_succeeded and friends go to SubscribeAndWait
		}
		s.run.other.Add(1)
		return true
	}
	now := sinceEpoch()
	if s.run.record(s.seen, s.index, ev.Data, now) {
		for {
			last := s.run.lastAt.Load()
			if now <= last || s.run.lastAt.CompareAndSwap(last, now) {
				break
			}
		}
	}
	return true
}

// runFanout subscribes S connections to one channel and publishes M events of B bytes to it through
// the signed REST API, at a set rate or as fast as a window of undelivered events allows.
func runFanout(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var t target
	t.register(fs, true, 5*time.Minute)
	subs := fs.Int("subs", 1000, "subscribers on the channel (at most 19500 sockets per process)")
	events := fs.Int("events", 1000, "events to publish")
	size := fs.Int("size", 200, "bytes of event data (the stamp takes about 40)")
	rate := fs.Float64("rate", 0, "events published per second; 0: as fast as --window allows")
	inflight := fs.Int("inflight", 4, "REST requests in flight at once")
	window := fs.Int("window", 32, "events published but not yet delivered to every subscriber before the publisher waits; 0: no window")
	channel := fs.String("channel", "bench-fanout", "the channel")
	var d dialing
	d.register(fs)
	drain := fs.Duration("drain", 10*time.Second, "give up waiting for deliveries after this long without progress")
	watch := fs.Bool("console", false, "watch the app in the debug console during the run, as an open page does (herald needs --console)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *subs < 1 || *subs+*inflight > maxSockets:
		return fmt.Errorf("--subs must be between 1 and %d (one process's sockets)", maxSockets-*inflight)
	case *events < 1 || int64(*events)*int64(*subs) > 1e9:
		return fmt.Errorf("--events must be ≥ 1 and events × subs ≤ 10⁹")
	case *size < 1 || *size > 1<<20 || *rate < 0 || *inflight < 1 || *window < 0 || *drain <= 0:
		return fmt.Errorf("need 1 ≤ size ≤ 1 MiB, rate ≥ 0, inflight ≥ 1, window ≥ 0, drain > 0")
	}
	srcs, ctx, cancel, err := t.start("fanout", &d, *subs)
	if err != nil {
		return err
	}
	defer cancel()

	res := fanoutResult{Bench: "fanout", Label: t.label, Subscribers: *subs, Events: *events, PayloadBytes: *size,
		RateHz: *rate, Inflight: *inflight, Window: *window, ServerPID: t.pid}
	run := &fanoutRun{events: *events}
	subscribers := make([]*fanoutSub, *subs)
	wsURLs := t.wsURLs()
	o := d.plan(*subs).run(ctx, func(ctx context.Context, i int) (*clients.Conn, error) {
		s := &fanoutSub{run: run, index: i, seen: newSeqSet(*events)}
		c, err := openSubscribed(ctx, wsURLs[i%len(wsURLs)], *channel, srcs.options(i, 4, s.onEvent), nil)
		if err == nil {
			s.ready.Store(true)
			subscribers[i] = s
		}
		return c, err
	})
	res.Connected, res.ConnectFailed, res.FirstFailure = o.ok, o.failed, o.firstFailure
	defer func() {
		if o.conns != nil {
			closeAll(o.conns, d.parallel)
		}
	}()
	if o.ok == 0 {
		return fmt.Errorf("no subscriber connected: %s", o.firstFailure)
	}
	fmt.Fprintf(out, "fanout: %d of %d subscribers on %q in %.1fs\n", o.ok, *subs, *channel, o.seconds)
	var console *consoleWatch
	if *watch {
		watchCtx, stopWatching := context.WithCancel(ctx)
		defer stopWatching()
		if console, err = watchConsole(watchCtx, t.restBase(), t.appID, t.secret); err != nil {
			return err
		}
	}
	sleepCtx(ctx, 500*time.Millisecond) // let the server settle after the connection storm

	// Publish.
	published := make([]atomic.Bool, *events)
	var pubErrors atomic.Int64
	var firstPubFailure sync.Once
	rest := t.rest(*inflight)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range *inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range jobs {
				data := stampData(seq, sinceEpoch(), *size)
				if _, err := rest.Trigger(ctx, []string{*channel}, fanoutEvent, data, nil); err != nil {
					pubErrors.Add(1)
					firstPubFailure.Do(func() { res.FirstPubFailed = err.Error() })
					continue
				}
				published[seq].Store(true)
			}
		}()
	}
	before, err := t.sample()
	if err != nil {
		return err
	}
	startNS := sinceEpoch()
	waiter := progressWaiter{count: run.delivered.Load, stall: *drain}
	var pace *pacer
	if *rate > 0 {
		pace = newPacer(*rate)
	}
	var due int64
publish:
	for seq := 0; seq < *events; seq++ {
		if pace != nil && due == 0 {
			if due = pace.wait(ctx); due == 0 {
				break
			}
		}
		due--
		if *window > 0 && seq >= *window {
			if err := waiter.until(ctx, int64(seq-*window+1)*o.ok); err != nil {
				res.Stalled = errors.Is(err, errStalled)
				break publish
			}
		}
		select {
		case jobs <- seq:
		case <-ctx.Done():
			break publish
		}
	}
	close(jobs)
	wg.Wait()
	if pace != nil {
		res.PacerLagged = pace.lagged
	}
	for i := range published {
		if published[i].Load() {
			res.Published++
		}
	}
	res.PublishErrors = pubErrors.Load()
	res.Expected = res.Published * o.ok
	if err := waiter.until(ctx, res.Expected); errors.Is(err, errStalled) {
		res.Stalled = true
	}
	after, err := t.sample()
	if err != nil {
		return err
	}

	// Close first: Close waits for each reader to end, after which its seqSet may be read.
	res.Disconnected = closeAll(o.conns, d.parallel)
	o.conns = nil
	for _, s := range subscribers {
		if s == nil {
			continue
		}
		for seq := range published {
			if published[seq].Load() && !s.seen.has(seq) {
				res.Lost++
			}
		}
	}
	res.Delivered, res.Duplicated, res.Other = run.delivered.Load(), run.duplicated.Load(), run.other.Load()
	snap := run.hist.snapshot()
	res.Latency = snap.summary()
	if last := run.lastAt.Load(); last > startNS {
		res.Seconds = round3(float64(last-startNS) / 1e9)
		res.DeliveredPerS = round3(float64(res.Delivered) / res.Seconds)
	}
	if len(t.pid) > 0 {
		res.serverCost = costBetween(before, after, res.Delivered)
	}
	if console != nil {
		res.ConsoleEvents, res.ConsoleBatches = console.events.Load(), console.batches.Load()
		fmt.Fprintf(out, "a console watched: %d feed events in %d batches\n", res.ConsoleEvents, res.ConsoleBatches)
	}

	fmt.Fprintf(out, "published %d of %d events of %d bytes (%d errors), rate %s, %d in flight, window %d\n",
		res.Published, *events, *size, res.PublishErrors, rateText(*rate), *inflight, *window)
	fmt.Fprintf(out, "delivered %d of %d (lost %d, duplicated %d, other %d, disconnected %d%s) in %.2fs: %.0f deliveries/s\n",
		res.Delivered, res.Expected, res.Lost, res.Duplicated, res.Other, res.Disconnected, stalledText(res.Stalled),
		res.Seconds, res.DeliveredPerS)
	fmt.Fprintf(out, "latency %s\n", res.Latency)
	if len(t.pid) > 0 {
		res.serverCost.print(out, "delivery")
	}
	return t.finish(ctx, out, res)
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "unpaced"
	}
	return formatFloat(rate, 0) + "/s"
}

func stalledText(stalled bool) string {
	if stalled {
		return ", STALLED"
	}
	return ""
}

var errStalled = errors.New("no progress")

// progressWaiter waits for a counter to reach a value, giving up when it stops moving for stall.
type progressWaiter struct {
	count func() int64
	stall time.Duration
}

func (w progressWaiter) until(ctx context.Context, want int64) error {
	last, lastAt := w.count(), time.Now()
	for delay := 50 * time.Microsecond; ; delay = min(delay*2, 2*time.Millisecond) {
		n := w.count()
		if n >= want {
			return nil
		}
		if n != last {
			last, lastAt, delay = n, time.Now(), 50*time.Microsecond
		} else if time.Since(lastAt) > w.stall {
			return errStalled
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(delay)
	}
}
