package main

import (
	"context"
	"runtime/debug"
	"time"
)

// memoryCheckInterval is how often the janitor looks at the connection count.
const memoryCheckInterval = 10 * time.Second

// releaseAfterDrops gives freed memory back to the kernel once the connection count has fallen to
// half its peak or less (and by at least 1,000): Go's background scavenger returns it only over many
// minutes, and an operator watching RSS after a traffic spike or a mass reconnect should see it go.
// A release is a full GC, so it runs at most once per drop; the peak then restarts from the current
// count.
func releaseAfterDrops(ctx context.Context, conns func() int, every time.Duration, release func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	peak := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := conns()
		switch {
		case n > peak:
			peak = n
		case peak-n >= 1000 && n <= peak/2:
			release()
			peak = n
		}
	}
}

// freeOSMemory is the release the server uses.
func freeOSMemory() { debug.FreeOSMemory() }
