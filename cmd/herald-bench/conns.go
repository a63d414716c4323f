package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/herald-rt/herald/clients"
)

// connsResult is the JSON line of a conns run. The top-level RSS figures are the first round's; with
// --rounds > 1, Rounds holds every round and the growth fields compare the last round with the first.
type connsResult struct {
	Bench         string    `json:"bench"`
	Label         string    `json:"label"`
	Connections   int       `json:"connections"`
	Channels      int       `json:"channels"`
	OK            int64     `json:"ok"`
	Failed        int64     `json:"failed"`
	Seconds       float64   `json:"open_seconds"`
	RSSBefore     int64     `json:"rss_before"`
	RSSAfter      int64     `json:"rss_after"`
	BytesPerConn  int64     `json:"bytes_per_conn"`
	FirstFailure  string    `json:"first_failure,omitempty"`
	ServerPID     processes `json:"pid,omitempty"`
	HoldSeconds   float64   `json:"hold_seconds"`
	ConnectRateHz int       `json:"rate"`
	Sources       int       `json:"sources"`

	Rounds []connsRound `json:"rounds,omitempty"`
	// RSSOpenGrowthPct compares the last round's RSS with its connections open to the first round's.
	RSSOpenGrowthPct float64 `json:"rss_open_growth_pct,omitempty"`
	// RSSClosedGrowthPct compares the last round's RSS after closing everything to the first round's.
	RSSClosedGrowthPct float64 `json:"rss_closed_growth_pct,omitempty"`
	// With --idle-settle, the first and the last round end with a long idle wait that lets the Go
	// runtime return freed memory (it takes two forced GCs, about four minutes, on an idle server):
	// RSSIdleFirst and RSSIdleLast are the RSS after those waits, the leak check's comparison.
	RSSIdleFirst     int64   `json:"rss_idle_first,omitempty"`
	RSSIdleLast      int64   `json:"rss_idle_last,omitempty"`
	RSSIdleGrowthPct float64 `json:"rss_idle_growth_pct,omitempty"`
	// With --debug-url, the server's goroutine count before the first round and after the last one
	// closed (null without it): the leak check's second comparison.
	GoroutinesBefore *int `json:"goroutines_before"`
	GoroutinesOpen   *int `json:"goroutines_open"` // the first round's, with its connections held idle
	GoroutinesAfter  *int `json:"goroutines_after"`
}

// connsRound is one open-hold-close round.
type connsRound struct {
	Round        int   `json:"round"`
	OK           int64 `json:"ok"`
	Failed       int64 `json:"failed"`
	Ended        int   `json:"ended_by_server"`
	RSSOpen      int64 `json:"rss_open"`
	RSSClosed    int64 `json:"rss_closed"`
	BytesPerConn int64 `json:"bytes_per_conn"`
	Goroutines   *int  `json:"goroutines,omitempty"` // after closing, with --debug-url
}

// runConns opens N connections at a set rate, each subscribed to one of K public channels, holds them,
// and reports the server's RSS growth per connection. With --rounds it closes them and starts again,
// reporting RSS after each round: memory or sockets leaked per connection show up as growth.
func runConns(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("conns", flag.ContinueOnError)
	var t target
	t.register(fs, false, 5*time.Minute)
	n := fs.Int("n", 1000, "connections to open (at most 19500: one process's open-files limit)")
	channels := fs.Int("channels", 100, "public channels the connections are spread over")
	var d dialing
	d.register(fs)
	fs.IntVar(&d.connectRate, "rate", 2000, "the same as --connect-rate (the name bench.sh and docs/BENCHMARKS.md use)")
	hold := fs.Duration("hold", 3*time.Second, "how long to hold the connections before measuring")
	rounds := fs.Int("rounds", 1, "open-hold-close rounds (the leak check uses 10)")
	settle := fs.Duration("settle", 3*time.Second, "wait after closing a round before measuring RSS")
	idleSettle := fs.Duration("idle-settle", 0, "with --rounds > 1: after the first and the last round, wait up to this long for the server to return freed memory (0: no such wait)")
	debugURL := fs.String("debug-url", "", "the server's debug listener (herald --debug-addr), e.g. http://127.0.0.1:6060, for its goroutine count (empty: not measured)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *debugURL != "" {
		if err := requireLoopback(*debugURL); err != nil {
			return err
		}
	}
	if *n < 1 || *n > maxSockets || *channels < 1 || *rounds < 1 || *rounds > 100 {
		return fmt.Errorf("need 1 ≤ n ≤ %d, channels ≥ 1, 1 ≤ rounds ≤ 100", maxSockets)
	}
	srcs, ctx, cancel, err := t.start("conns", &d, *n**rounds)
	if err != nil {
		return err
	}
	defer cancel()

	res := connsResult{Bench: "conns", Label: t.label, Connections: *n, Channels: *channels, ServerPID: t.pid,
		HoldSeconds: hold.Seconds(), ConnectRateHz: d.connectRate, Sources: max(len(srcs), 1)}
	before, err := t.sample()
	if err != nil {
		return err
	}
	res.RSSBefore = before.rss
	// goroutines samples the server's goroutine count (nil without --debug-url).
	goroutines := func() (*int, error) {
		if *debugURL == "" {
			return nil, nil
		}
		n, err := goroutineCount(ctx, *debugURL)
		return &n, err
	}
	if res.GoroutinesBefore, err = goroutines(); err != nil {
		return err
	}

	plan := d.plan(*n)
	wsURLs := t.wsURLs()
	for r := 1; r <= *rounds && ctx.Err() == nil; r++ {
		o := plan.run(ctx, func(ctx context.Context, i int) (*clients.Conn, error) {
			return openSubscribed(ctx, wsURLs[i%len(wsURLs)], "bench-"+strconv.Itoa(i%*channels), srcs.options(i, 4, nil), nil)
		})
		sleepCtx(ctx, *hold) // the measurement is of connections held idle
		open, err := t.sample()
		if err != nil {
			return err
		}
		if r == 1 {
			if res.GoroutinesOpen, err = goroutines(); err != nil {
				return err
			}
		}
		ended := closeAll(o.conns, d.parallel)
		round := connsRound{Round: r, OK: o.ok, Failed: o.failed, Ended: ended, RSSOpen: open.rss}
		if o.ok > 0 && len(t.pid) > 0 {
			round.BytesPerConn = (open.rss - before.rss) / o.ok
		}
		if r == 1 {
			res.OK, res.Failed, res.Seconds, res.FirstFailure = o.ok, o.failed, round3(o.seconds), o.firstFailure
			res.RSSAfter, res.BytesPerConn = open.rss, round.BytesPerConn
		} else if res.FirstFailure == "" {
			res.FirstFailure = o.firstFailure
		}
		if *rounds > 1 {
			sleepCtx(ctx, *settle)
			closed, err := t.sample()
			if err != nil {
				return err
			}
			round.RSSClosed = closed.rss
			if round.Goroutines, err = goroutines(); err != nil {
				return err
			}
			res.GoroutinesAfter = round.Goroutines
			res.Rounds = append(res.Rounds, round)
			fmt.Fprintf(out, "round %d: %d open (%d failed, %d ended by the server), RSS %.1f MiB open, %.1f MiB closed%s\n",
				r, o.ok, o.failed, ended, mib(open.rss), mib(closed.rss), goroutinesNote(round.Goroutines))
			if *idleSettle > 0 && len(t.pid) > 0 && (r == 1 || r == *rounds) {
				idle, waited, err := waitForRelease(ctx, t.pid, before.rss, closed.rss, *idleSettle)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "round %d: RSS %.1f MiB after %s idle\n", r, mib(idle), waited.Round(time.Second))
				if r == 1 {
					res.RSSIdleFirst = idle
				} else {
					res.RSSIdleLast = idle
				}
			}
		}
	}
	if k := len(res.Rounds); k > 1 && len(t.pid) > 0 {
		first, last := res.Rounds[0], res.Rounds[k-1]
		res.RSSOpenGrowthPct = growthPct(first.RSSOpen, last.RSSOpen)
		res.RSSClosedGrowthPct = growthPct(first.RSSClosed, last.RSSClosed)
		if res.RSSIdleFirst > 0 && res.RSSIdleLast > 0 {
			res.RSSIdleGrowthPct = growthPct(res.RSSIdleFirst, res.RSSIdleLast)
		}
	}

	fmt.Fprintf(out, "conns: %d of %d connections subscribed (%d failed) in %.1fs over %d channels\n",
		res.OK, res.Connections, res.Failed, res.Seconds, res.Channels)
	if len(t.pid) > 0 {
		fmt.Fprintf(out, "server RSS %.1f MiB -> %.1f MiB: %d bytes per connection\n",
			mib(res.RSSBefore), mib(res.RSSAfter), res.BytesPerConn)
		if res.GoroutinesOpen != nil {
			fmt.Fprintf(out, "server goroutines: %d before, %d with the connections open\n", *res.GoroutinesBefore, *res.GoroutinesOpen)
		}
		if len(res.Rounds) > 1 {
			fmt.Fprintf(out, "over %d rounds: RSS with connections open %+.1f %%, after closing %+.1f %% (last round vs first)\n",
				len(res.Rounds), res.RSSOpenGrowthPct, res.RSSClosedGrowthPct)
			if res.GoroutinesAfter != nil {
				fmt.Fprintf(out, "server goroutines: %d before the first round, %d after the last closed\n",
					*res.GoroutinesBefore, *res.GoroutinesAfter)
			}
			if res.RSSIdleLast > 0 {
				fmt.Fprintf(out, "idle RSS after the first round %.1f MiB, after the last %.1f MiB: %+.1f %%\n",
					mib(res.RSSIdleFirst), mib(res.RSSIdleLast), res.RSSIdleGrowthPct)
			}
		}
	}
	if res.FirstFailure != "" {
		fmt.Fprintf(out, "first failure: %s\n", res.FirstFailure)
	}
	return t.finish(ctx, out, res)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func goroutinesNote(n *int) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf(", %d server goroutines", *n)
}

func growthPct(first, last int64) float64 {
	if first <= 0 {
		return 0
	}
	return round3(100 * float64(last-first) / float64(first))
}

// waitForRelease waits, up to limit, for the server to hand freed memory back after its connections
// closed: the Go runtime keeps it until two forced GCs later on an idle server. It returns once RSS has
// given back at least half of what the round added (then two more samples, 5 s apart, let the release
// finish), or at the limit, with the last RSS read and how long it waited.
func waitForRelease(ctx context.Context, pid processes, idleRSS, closedRSS int64, limit time.Duration) (int64, time.Duration, error) {
	const every = 5 * time.Second
	began := time.Now()
	threshold := idleRSS + (closedRSS-idleRSS)/2
	released := -1
	for i := 0; ; i++ {
		rss, err := pid.rss()
		if err != nil {
			return 0, 0, err
		}
		if released < 0 && rss <= threshold {
			released = i
		}
		if (released >= 0 && i >= released+2) || time.Since(began)+every > limit || ctx.Err() != nil {
			return rss, time.Since(began), nil
		}
		sleepCtx(ctx, every)
	}
}
