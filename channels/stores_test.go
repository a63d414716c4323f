package channels

import (
	"context"
	"testing"
	"time"
)

func TestMemoryCacheTTLAndBound(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	c := NewMemoryCache(3, clock)
	ctx := context.Background()
	_ = c.Set(ctx, "a", "cache-1", CachedEvent{Data: "1"}, time.Minute)
	ev, ttl, ok, _ := c.Get(ctx, "a", "cache-1")
	if !ok || ev.Data != "1" || ttl != time.Minute {
		t.Fatalf("Get = %+v %v %v", ev, ttl, ok)
	}
	if _, _, ok, _ := c.Get(ctx, "b", "cache-1"); ok {
		t.Error("another app sees the entry")
	}
	now = now.Add(time.Minute)
	if _, _, ok, _ := c.Get(ctx, "a", "cache-1"); ok {
		t.Error("expired entry returned")
	}

	for i := range 10 {
		_ = c.Set(ctx, "a", "cache-x"+itoa(i), CachedEvent{}, time.Hour)
		if n := len(c.entries); n > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", n)
		}
	}
	if _, _, ok, _ := c.Get(ctx, "a", "cache-x9"); !ok {
		t.Error("the newest entry was evicted")
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
