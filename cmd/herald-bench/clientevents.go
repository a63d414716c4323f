package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// clientEvent is the event name the client-events bench sends.
const clientEvent = "client-bench"

// clientEventsResult is the JSON line of a client-events run.
type clientEventsResult struct {
	Bench         string    `json:"bench"`
	Label         string    `json:"label"`
	Pairs         int       `json:"pairs"`
	Connected     int64     `json:"connected"`
	ConnectFailed int64     `json:"connect_failed"`
	PerConnRateHz float64   `json:"rate_per_conn"`
	PayloadBytes  int       `json:"payload_bytes"`
	Sent          int64     `json:"sent"`
	SendErrors    int64     `json:"send_errors"`
	Delivered     int64     `json:"delivered"`
	Lost          int64     `json:"lost"`
	Duplicated    int64     `json:"duplicated"`
	RateLimited   int64     `json:"rate_limited"` // pusher:error 4301 answers
	OtherErrors   int64     `json:"other_errors"` // other pusher:error answers
	Other         int64     `json:"other_events"`
	Disconnected  int       `json:"disconnected"`
	PacerLagged   int64     `json:"pacer_lagged"`
	Stalled       bool      `json:"stalled"`
	Seconds       float64   `json:"seconds"`
	DeliveredPerS float64   `json:"delivered_per_sec"`
	Latency       latencyMS `json:"latency_ms"`
	ServerPID     processes `json:"pid,omitempty"`
	FirstFailure  string    `json:"first_failure,omitempty"`
	serverCost
}

// ceRun is the state every connection's reader shares.
type ceRun struct {
	tally
	rateLimited atomic.Int64
	otherErrors atomic.Int64
}

// ceConn is one side of a pair. Its reader alone writes seen (what the partner sent); the sender
// goroutine that owns it alone writes sent.
type ceConn struct {
	run     *ceRun
	index   int
	channel string
	conn    *clients.Conn
	ready   atomic.Bool
	seen    seqSet
	sent    int // events this side sent successfully, seq 0 … sent-1 (the sender knows which)
	okSeqs  seqSet
	nextSeq int
}

func (c *ceConn) onEvent(ev clients.Event) bool {
	switch {
	case ev.Event == clientEvent:
		c.run.record(c.seen, c.index, ev.Data, sinceEpoch())
		return true
	case !c.ready.Load():
		return false // subscription_succeeded goes to SubscribeAndWait
	case ev.Event == pusher.EventError:
		if pe, ok := ev.PusherError(); ok && pe.Code == pusher.CodeClientEventLimit {
			c.run.rateLimited.Add(1)
		} else {
			c.run.otherErrors.Add(1)
		}
	default:
		c.run.other.Add(1)
	}
	return true
}

// runClientEvents opens P pairs of connections, each pair on its own private channel, and has every
// connection send client events to its partner at a rate under the server's per-connection limit.
func runClientEvents(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("client-events", flag.ContinueOnError)
	var t target
	t.register(fs, true, 3*time.Minute)
	pairs := fs.Int("pairs", 500, "pairs of connections, each on its own private channel")
	rate := fs.Float64("rate", 8, "client events each connection sends per second (the server allows 10)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	size := fs.Int("size", 100, "bytes of event data")
	senders := fs.Int("senders", 4, "sending goroutines, each pacing its share of the connections")
	var d dialing
	d.register(fs)
	drain := fs.Duration("drain", 5*time.Second, "give up waiting for deliveries after this long without progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *pairs < 1 || 2**pairs > maxSockets:
		return fmt.Errorf("--pairs must be between 1 and %d", maxSockets/2)
	case *rate <= 0 || *rate > 10:
		return fmt.Errorf("--rate must be in (0, 10]: the server refuses an 11th client event within a second")
	case *duration <= 0 || *size < 1 || *size > 10240 || *senders < 1 || *drain <= 0:
		return fmt.Errorf("need duration > 0, 1 ≤ size ≤ 10240, senders ≥ 1, drain > 0")
	}
	srcs, ctx, cancel, err := t.start("client-events", &d, 2**pairs)
	if err != nil {
		return err
	}
	defer cancel()

	res := clientEventsResult{Bench: "client-events", Label: t.label, Pairs: *pairs, PerConnRateHz: *rate,
		PayloadBytes: *size, ServerPID: t.pid}
	run := &ceRun{}
	maxSeq := int(math.Ceil(duration.Seconds()**rate)) + 64
	sides := make([]*ceConn, 2**pairs)
	for i := range sides {
		sides[i] = &ceConn{run: run, index: i, channel: "private-bench-" + strconv.Itoa(i/2),
			seen: newSeqSet(maxSeq), okSeqs: newSeqSet(maxSeq)}
	}
	authorize := clients.SignedAuthorizer(t.key, t.secret, nil)
	wsURLs := t.wsURLs()
	o := d.plan(len(sides)).run(ctx, func(ctx context.Context, i int) (*clients.Conn, error) {
		s := sides[i]
		c, err := openSubscribed(ctx, wsURLs[i%len(wsURLs)], s.channel, srcs.options(i, 4, s.onEvent), authorize)
		if err == nil {
			s.conn = c
			s.ready.Store(true)
		}
		return c, err
	})
	res.Connected, res.ConnectFailed, res.FirstFailure = o.ok, o.failed, o.firstFailure
	defer func() {
		if o.conns != nil {
			closeAll(o.conns, d.parallel)
		}
	}()
	// Only pairs with both sides connected send.
	var active []*ceConn
	for i := 0; i+1 < len(sides); i += 2 {
		if sides[i].conn != nil && sides[i+1].conn != nil {
			active = append(active, sides[i], sides[i+1])
		}
	}
	if len(active) == 0 {
		return fmt.Errorf("no pair connected: %s", o.firstFailure)
	}
	fmt.Fprintf(out, "client-events: %d of %d pairs connected in %.1fs\n", len(active)/2, *pairs, o.seconds)
	sleepCtx(ctx, 500*time.Millisecond)

	var sendErrors atomic.Int64
	var firstSendFailure sync.Once
	before, err := t.sample()
	if err != nil {
		return err
	}
	startNS := sinceEpoch()
	end := time.Now().Add(*duration)
	var lagged atomic.Int64
	var wg sync.WaitGroup
	for g := range min(*senders, len(active)) {
		var mine []*ceConn
		for i := g; i < len(active); i += *senders {
			mine = append(mine, active[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Round robin over this sender's connections at len(mine) × rate sends a second gives each
			// connection exactly rate sends a second, evenly spaced.
			pace := newPacer(float64(len(mine)) * *rate)
			defer func() { lagged.Add(pace.lagged) }()
			next := 0
			for time.Now().Before(end) {
				n := pace.wait(ctx)
				if n == 0 {
					return
				}
				for ; n > 0; n-- {
					c := mine[next]
					next = (next + 1) % len(mine)
					if c.nextSeq >= maxSeq {
						continue
					}
					seq := c.nextSeq
					c.nextSeq++
					err := c.conn.Trigger(ctx, c.channel, clientEvent, stampData(seq, sinceEpoch(), *size))
					if err != nil {
						sendErrors.Add(1)
						firstSendFailure.Do(func() {
							if res.FirstFailure == "" {
								res.FirstFailure = err.Error()
							}
						})
						continue
					}
					c.okSeqs.add(seq)
					c.sent++
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range active {
		res.Sent += int64(c.sent)
	}
	res.SendErrors, res.PacerLagged = sendErrors.Load(), lagged.Load()
	waiter := progressWaiter{count: run.delivered.Load, stall: *drain}
	if err := waiter.until(ctx, res.Sent); errors.Is(err, errStalled) {
		res.Stalled = true
	}
	lastNS := sinceEpoch()
	after, err := t.sample()
	if err != nil {
		return err
	}
	res.Disconnected = closeAll(o.conns, d.parallel)
	o.conns = nil
	for i, c := range active {
		partner := active[i^1] // pairs are adjacent in active
		for seq := range maxSeq {
			if partner.okSeqs.has(seq) && !c.seen.has(seq) {
				res.Lost++
			}
		}
	}
	res.Delivered, res.Duplicated, res.Other = run.delivered.Load(), run.duplicated.Load(), run.other.Load()
	res.RateLimited, res.OtherErrors = run.rateLimited.Load(), run.otherErrors.Load()
	snap := run.hist.snapshot()
	res.Latency = snap.summary()
	res.Seconds = round3(float64(lastNS-startNS) / 1e9)
	if res.Seconds > 0 {
		res.DeliveredPerS = round3(float64(res.Delivered) / res.Seconds)
	}
	if len(t.pid) > 0 {
		res.serverCost = costBetween(before, after, res.Delivered)
	}

	fmt.Fprintf(out, "sent %d client events of %d bytes (%d errors) at %s per connection over %d connections\n",
		res.Sent, *size, res.SendErrors, rateText(*rate), len(active))
	fmt.Fprintf(out, "delivered %d (lost %d, duplicated %d, rate-limited %d, other errors %d, disconnected %d%s) in %.2fs: %.0f relayed/s\n",
		res.Delivered, res.Lost, res.Duplicated, res.RateLimited, res.OtherErrors, res.Disconnected, stalledText(res.Stalled),
		res.Seconds, res.DeliveredPerS)
	fmt.Fprintf(out, "latency %s\n", res.Latency)
	if len(t.pid) > 0 {
		res.serverCost.print(out, "relayed event")
	}
	return t.finish(ctx, out, res)
}
