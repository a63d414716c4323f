package main

import (
	"context"
	"testing"
	"time"
)

func TestReleaseAfterDrops(t *testing.T) {
	// Connection counts the janitor sees, one per tick.
	counts := []int{0, 500, 5000, 4000, 2600, 2400, 2400, 100, 300, 3000, 1999, 1400}
	i := 0
	ticks := make(chan struct{})
	conns := func() int {
		if i == len(counts) { // a tick can win over the cancel once: the same count again, unseen
			return counts[i-1]
		}
		n := counts[i]
		i++
		ticks <- struct{}{}
		return n
	}
	var releasedAt []int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		releaseAfterDrops(ctx, conns, time.Millisecond, func() { releasedAt = append(releasedAt, i-1) })
		close(done)
	}()
	for range counts {
		select {
		case <-ticks:
		case <-time.After(5 * time.Second):
			t.Fatal("janitor stopped polling")
		}
	}
	cancel()
	<-done
	// Tick 5: 2400 is at most half the peak of 5000 and 2,600 fewer: release; the peak restarts at
	// 2400. Tick 7: 100 against 2400: release; the peak restarts at 100. Ticks 4 and 10 are drops of
	// over 1,000 but not to half. Tick 11: 1400 against the new peak of 3000: release.
	want := []int{5, 7, 11}
	if len(releasedAt) != len(want) {
		t.Fatalf("released at ticks %v, want %v", releasedAt, want)
	}
	for k := range want {
		if releasedAt[k] != want[k] {
			t.Fatalf("released at ticks %v, want %v", releasedAt, want)
		}
	}
}
