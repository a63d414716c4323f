package channels_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
)

// TestNoLeakAcrossRounds opens and closes rounds of subscribed connections (public, private and
// presence) and checks that everything a connection held is released: the server returns to zero
// connections and channels, goroutines to their level after the first round, and the live heap stops
// growing after the first rounds.
func TestNoLeakAcrossRounds(t *testing.T) {
	h := start(t, channels.Config{})
	baseGoroutines := -1 // taken after the first round, once the REST client's keep-alive connection exists
	const rounds, perRound = 8, 400
	var warmHeap uint64 // after round 1: maps keep their buckets and pools their buffers once grown
	for round := range rounds {
		// One context per round: ctxT's per-call cleanups would themselves pile up until the test ends.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conns := make([]*clients.Conn, perRound)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := range conns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := clients.Dial(ctx, h.wsURL("/app/"+key), &clients.DialOptions{EventBuffer: 4})
				if err != nil {
					t.Error(err)
					return
				}
				conns[i] = c
				n := strconv.Itoa(i % 20)
				for _, ch := range []string{"pub-" + n, "private-" + n, "presence-" + n} {
					if _, err := c.SubscribeAndWait(ctx, ch, presenceAs("u"+strconv.Itoa(i))); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		waitUntil(t, "all connections gone", func() bool { return h.srv.Connections() == 0 })
		list, err := h.rest.Channels(ctx, "", "")
		cancel()
		if err != nil || len(list.Channels) != 0 {
			t.Fatalf("round %d: channels left %v (%v)", round, list, err)
		}
		if baseGoroutines < 0 {
			baseGoroutines = settledGoroutines(t)
		}
		waitUntil(t, "goroutines back to the first round's level", func() bool { return runtime.NumGoroutine() <= baseGoroutines })
		heap := liveHeap()
		t.Logf("round %d: live heap %d KB", round, heap>>10)
		switch {
		case round == 1:
			warmHeap = heap
		case round > 1 && heap > warmHeap+4<<20:
			// 4 MB over 6 more rounds of 400 connections: a leak of 1.5 KB per connection shows.
			t.Errorf("round %d: live heap %d KB, %d KB after round 1: something is kept per connection", round, heap>>10, warmHeap>>10)
		}
	}
}

// settledGoroutines returns the goroutine count once it has stopped falling (connection goroutines
// exit shortly after their sockets close), bounded to 10 s.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	last, stable := runtime.NumGoroutine(), 0
	waitUntil(t, "goroutines to settle", func() bool {
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		return stable >= 20
	})
	return last
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitUntil polls a condition that settles asynchronously (goroutines exit after their sockets close),
// bounded to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Logf("goroutines:\n%s", buf[:n])
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
