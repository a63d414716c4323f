package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/clients"
)

// churnResult is the JSON line of a churn run.
type churnResult struct {
	Bench        string    `json:"bench"`
	Label        string    `json:"label"`
	Workers      int       `json:"workers"`
	Presence     bool      `json:"presence,omitempty"`
	Channels     int       `json:"channels"`
	Sources      int       `json:"sources"`
	Cycles       int64     `json:"cycles"`
	Errors       int64     `json:"errors"`
	DialErrors   int64     `json:"dial_errors"`
	SubErrors    int64     `json:"subscribe_errors"`
	UnsubErrors  int64     `json:"unsubscribe_errors"`
	CloseErrors  int64     `json:"close_errors"`
	Seconds      float64   `json:"seconds"`
	CyclesPerS   float64   `json:"cycles_per_sec"`
	Latency      latencyMS `json:"cycle_latency_ms"`
	ServerPID    processes `json:"pid,omitempty"`
	FirstFailure string    `json:"first_failure,omitempty"`
	serverCost
}

// runChurn runs connect → subscribe → unsubscribe → close cycles with C workers for T seconds.
func runChurn(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("churn", flag.ContinueOnError)
	var t target
	t.register(fs, true, 2*time.Minute)
	workers := fs.Int("workers", 16, "concurrent workers, each running one cycle at a time")
	duration := fs.Duration("duration", 10*time.Second, "how long to start new cycles")
	channels := fs.Int("channels", 0, "public channels the workers spread over (0: one per worker, so every cycle occupies and vacates one)")
	var nsources int
	sourcesVar(fs, &nsources, 8, "(so closed sockets in TIME_WAIT do not exhaust the ports of one)")
	cycleTimeout := fs.Duration("cycle-timeout", 10*time.Second, "upper bound on one cycle")
	presence := fs.Bool("presence", false, "subscribe to presence channels, each cycle as a user of its own (signed with --secret)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *channels == 0 {
		*channels = *workers
	}
	if *workers < 1 || *workers > 4096 || *duration <= 0 || *channels < 1 || *cycleTimeout <= 0 {
		return fmt.Errorf("need 1 ≤ workers ≤ 4096, duration > 0, channels ≥ 1, cycle-timeout > 0")
	}
	if err := t.check("churn"); err != nil {
		return err
	}
	srcs, err := newSources(nsources)
	if err != nil {
		return err
	}
	if *duration+*cycleTimeout > t.timeout {
		return fmt.Errorf("--timeout %s must exceed --duration + --cycle-timeout", t.timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()

	res := churnResult{Bench: "churn", Label: t.label, Workers: *workers, Channels: *channels,
		Sources: max(len(srcs), 1), Presence: *presence, ServerPID: t.pid}
	var hist latencyHist
	var cycles, dialErr, subErr, unsubErr, closeErr, next atomic.Int64
	var firstFailure sync.Once
	fail := func(counter *atomic.Int64, stage string, err error) {
		counter.Add(1)
		firstFailure.Do(func() { res.FirstFailure = stage + ": " + err.Error() })
	}
	wsURLs := t.wsURLs()

	before, err := t.sample()
	if err != nil {
		return err
	}
	end := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			channel := "churn-" + strconv.Itoa(w%*channels)
			var authorize clients.Authorizer
			if *presence {
				channel = "presence-" + channel
				authorize = clients.SignedAuthorizer(t.key, t.secret, func(string) string {
					return `{"user_id":"churn-` + strconv.Itoa(w) + `"}`
				})
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				i := int(next.Add(1))
				began := time.Now()
				cctx, ccancel := context.WithTimeout(ctx, *cycleTimeout)
				ok := churnCycle(cctx, wsURLs[i%len(wsURLs)], channel, authorize, srcs.options(i, 4, nil), func(stage string, err error) {
					switch stage {
					case "dial":
						fail(&dialErr, stage, err)
					case "subscribe":
						fail(&subErr, stage, err)
					case "unsubscribe":
						fail(&unsubErr, stage, err)
					default:
						fail(&closeErr, stage, err)
					}
				})
				ccancel()
				if ok {
					cycles.Add(1)
					hist.record(w, time.Since(began))
				} else {
					sleepCtx(ctx, 10*time.Millisecond) // a failing server is not hammered in a tight loop
				}
			}
		}()
	}
	wg.Wait()
	sleepCtx(ctx, 200*time.Millisecond) // the server's read loops finish their cleanup
	after, err := t.sample()
	if err != nil {
		return err
	}
	res.Cycles = cycles.Load()
	res.DialErrors, res.SubErrors, res.UnsubErrors, res.CloseErrors = dialErr.Load(), subErr.Load(), unsubErr.Load(), closeErr.Load()
	res.Errors = res.DialErrors + res.SubErrors + res.UnsubErrors + res.CloseErrors
	res.Seconds = round3(after.at.Sub(before.at).Seconds())
	if res.Seconds > 0 {
		res.CyclesPerS = round3(float64(res.Cycles) / res.Seconds)
	}
	snap := hist.snapshot()
	res.Latency = snap.summary()
	if len(t.pid) > 0 {
		res.serverCost = costBetween(before, after, res.Cycles)
	}

	fmt.Fprintf(out, "churn: %d cycles (connect, subscribe, unsubscribe, close) in %.1fs with %d workers over %d channels: %.0f cycles/s, %d errors\n",
		res.Cycles, res.Seconds, *workers, *channels, res.CyclesPerS, res.Errors)
	fmt.Fprintf(out, "cycle latency %s\n", res.Latency)
	if len(t.pid) > 0 {
		res.serverCost.print(out, "cycle")
	}
	if res.FirstFailure != "" {
		fmt.Fprintf(out, "first failure: %s\n", res.FirstFailure)
	}
	return t.finish(ctx, out, res)
}

// churnCycle runs one connect-subscribe-unsubscribe-close cycle, reporting the failing stage.
func churnCycle(ctx context.Context, wsURL, channel string, authorize clients.Authorizer, opts *clients.DialOptions, fail func(stage string, err error)) bool {
	c, err := clients.Dial(ctx, wsURL, opts)
	if err != nil {
		fail("dial", err)
		return false
	}
	defer func() { _ = c.Close() }() // idempotent: the success path closes (and checks) first
	if _, err := c.SubscribeAndWait(ctx, channel, authorize); err != nil {
		fail("subscribe", err)
		return false
	}
	if err := c.Unsubscribe(ctx, channel); err != nil {
		fail("unsubscribe", err)
		return false
	}
	if err := c.Close(); err != nil {
		fail("close", err)
		return false
	}
	return true
}
