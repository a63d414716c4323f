package channels

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestMemoryCacheTTLAndBound(t *testing.T) {
	var mu sync.Mutex // the sweep timer reads the clock too
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewMemoryCache(3, 0, clock)
	ctx := context.Background()
	seq1, _ := c.Set(ctx, "a", "cache-1", []byte("1"), time.Minute)
	ev, ok, _ := c.Get(ctx, "a", "cache-1")
	if !ok || string(ev.Frame) != "1" || ev.TTL != time.Minute || ev.Seq != seq1 {
		t.Fatalf("Get = %+v %v", ev, ok)
	}
	if _, ok, _ := c.Get(ctx, "b", "cache-1"); ok {
		t.Error("another app sees the entry")
	}
	if seq2, _ := c.Set(ctx, "a", "cache-1", []byte("2"), time.Minute); seq2 <= seq1 {
		t.Errorf("second Set got sequence %d after %d", seq2, seq1)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, ok, _ := c.Get(ctx, "a", "cache-1"); ok {
		t.Error("expired entry returned")
	}

	for i := range 10 {
		_, _ = c.Set(ctx, "a", "cache-x"+strconv.Itoa(i), nil, time.Hour+time.Duration(i)*time.Second)
		if n := len(c.entries); n > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", n)
		}
	}
	if _, ok, _ := c.Get(ctx, "a", "cache-x9"); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok, _ := c.Get(ctx, "a", "cache-x0"); ok {
		t.Error("the entry closest to expiry was kept past the bound")
	}
}

// TestMemoryCacheByteBound: events are bounded by bytes as well as by entries; an event larger than
// the whole bound is not kept.
func TestMemoryCacheByteBound(t *testing.T) {
	c := NewMemoryCache(0, 64<<10, nil)
	ctx := context.Background()
	frame := make([]byte, 10<<10)
	for i := range 100 {
		_, _ = c.Set(ctx, "a", "cache-"+strconv.Itoa(i), frame, time.Hour)
		if b := c.Bytes(); b > 64<<10 {
			t.Fatalf("after %d events the cache holds %d bytes, bound is 64 KiB", i+1, b)
		}
	}
	if _, ok, _ := c.Get(ctx, "a", "cache-99"); !ok {
		t.Error("the newest event was evicted")
	}
	_, _ = c.Set(ctx, "a", "cache-huge", make([]byte, 100<<10), time.Hour)
	if _, ok, _ := c.Get(ctx, "a", "cache-huge"); ok {
		t.Error("an event larger than the whole bound was kept")
	}
}

// TestMemoryCacheSweepsExpiredEvents: expired events leave the cache on a timer, with nothing read
// or written, and the timer stops once the cache is empty.
func TestMemoryCacheSweepsExpiredEvents(t *testing.T) {
	c := NewMemoryCache(0, 0, nil)
	ctx := context.Background()
	for i := range 100 {
		_, _ = c.Set(ctx, "a", "cache-"+strconv.Itoa(i), make([]byte, 1000), time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Bytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still cached 10 s after a 1 ms TTL", c.Bytes())
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome with a deadline, not synchronising
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sweep != nil || len(c.entries) != 0 {
		t.Errorf("an empty cache keeps its sweep timer (%v) or entries (%d)", c.sweep != nil, len(c.entries))
	}
}

func TestMemoryUsers(t *testing.T) {
	u := NewMemoryUsers()
	ctx := context.Background()
	if first, _ := u.Connect(ctx, "a", "ann", "s1"); !first {
		t.Error("first socket not first")
	}
	if first, _ := u.Connect(ctx, "a", "ann", "s2"); first {
		t.Error("second socket reported first")
	}
	if n, _ := u.Count(ctx, "a", "ann"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if last, _ := u.Disconnect(ctx, "a", "ann", "s1"); last {
		t.Error("first of two sockets reported last")
	}
	if last, _ := u.Disconnect(ctx, "a", "ann", "s2"); !last {
		t.Error("last socket not reported last")
	}
	if last, _ := u.Disconnect(ctx, "a", "ann", "s3"); last || len(u.sockets) != 0 {
		t.Errorf("disconnect of an unknown user: last=%v, %d entries left", last, len(u.sockets))
	}
}
