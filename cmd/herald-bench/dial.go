package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/clients"
)

// dialPlan opens many connections at a bounded rate with a bounded number of dials in flight.
type dialPlan struct {
	n        int // connections
	rate     int // dials started per second
	parallel int // dials in flight at once
}

// dialOutcome is what a dialPlan produced: conns[i] is nil where the i-th open failed.
type dialOutcome struct {
	conns        []*clients.Conn
	ok, failed   int64
	firstFailure string
	seconds      float64
}

// run opens p.n connections with open, which dials (and usually subscribes) the i-th. It stops
// starting dials when ctx ends and returns once every started dial has finished.
func (p dialPlan) run(ctx context.Context, open func(ctx context.Context, i int) (*clients.Conn, error)) dialOutcome {
	out := dialOutcome{conns: make([]*clients.Conn, p.n)}
	var ok, failed atomic.Int64
	var first sync.Once
	pace := newPacer(float64(p.rate))
	slots := make(chan struct{}, p.parallel)
	var wg sync.WaitGroup
	began := time.Now()
	for i := 0; i < p.n; {
		due := pace.wait(ctx)
		if due == 0 {
			failed.Add(int64(p.n - i))
			first.Do(func() { out.firstFailure = fmt.Sprintf("timed out after starting %d dials", i) })
			break
		}
		for ; due > 0 && i < p.n; due-- {
			slots <- struct{}{}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-slots }()
				c, err := open(ctx, i)
				if err != nil {
					failed.Add(1)
					first.Do(func() { out.firstFailure = err.Error() })
					return
				}
				out.conns[i] = c
				ok.Add(1)
			}(i)
			i++
		}
	}
	wg.Wait()
	out.seconds = time.Since(began).Seconds()
	out.ok, out.failed = ok.Load(), failed.Load()
	return out
}

// openSubscribed dials and subscribes one connection. Events the subscription does not wait for go to
// onEvent (nil drops nothing: they queue, up to a small buffer).
func openSubscribed(ctx context.Context, wsURL, channel string, opts *clients.DialOptions, authorize clients.Authorizer) (*clients.Conn, error) {
	c, err := clients.Dial(ctx, wsURL, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.SubscribeAndWait(ctx, channel, authorize); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// closeAll closes every non-nil connection, parallel at a time, and reports how many had already
// ended (the server closed them) before Close.
func closeAll(conns []*clients.Conn, parallel int) (ended int) {
	work := make(chan *clients.Conn)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if c.Err() != nil {
					n.Add(1)
				}
				_ = c.Close()
			}
		}()
	}
	for _, c := range conns {
		if c != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
	return int(n.Load())
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
