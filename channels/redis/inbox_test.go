package redis

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
)

// TestInboxKeepsEachChannelInOrder: messages of many channels, delivered by several workers, reach
// the delivery function in the order each channel received them.
func TestInboxKeepsEachChannelInOrder(t *testing.T) {
	const channelsN, perChannel = 20, 200
	var mu sync.Mutex
	got := map[string][]string{}
	done := make(chan struct{})
	n := 0
	in := newInbox(func(m channels.Message) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Channel] = append(got[m.Channel], string(m.Frame))
		if n++; n == channelsN*perChannel {
			close(done)
		}
	}, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	in.run(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()
	for i := range perChannel {
		for c := range channelsN {
			if in.push(channels.Message{AppID: "a", Channel: "c" + strconv.Itoa(c), Frame: []byte(strconv.Itoa(i))}) {
				t.Fatal("dropped below the bound")
			}
		}
	}
	<-done
	for c, frames := range got {
		for i, f := range frames {
			if f != strconv.Itoa(i) {
				t.Fatalf("channel %s: message %d is %s", c, i, f)
			}
		}
	}
	// The last delivery returned before its bytes were uncounted: wait for that, with a bound.
	for deadline := time.Now().Add(time.Second); in.queued.Load() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted as queued after every delivery", in.queued.Load())
		}
		time.Sleep(time.Millisecond) // polling an atomic the worker writes next, with a deadline
	}
}

// TestInboxDropsPastItsBound: while delivery is stuck, messages past the byte bound are dropped and
// counted, and the node reports itself unhealthy.
func TestInboxDropsPastItsBound(t *testing.T) {
	release := make(chan struct{})
	in := newInbox(func(channels.Message) { <-release }, 100)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	in.run(ctx, &wg)
	defer func() { close(release); cancel(); wg.Wait() }()
	if err := in.healthy(); err != nil {
		t.Fatalf("healthy before any drop: %v", err)
	}
	drops := 0
	for range 10 {
		if in.push(channels.Message{AppID: "a", Channel: "c", Frame: make([]byte, 30)}) {
			drops++
		}
	}
	if drops != 7 || in.dropped.Load() != 7 {
		t.Fatalf("%d dropped (counted %d), want 7: three 32-byte messages fit in 100 bytes", drops, in.dropped.Load())
	}
	if in.healthy() == nil {
		t.Fatal("healthy right after dropping messages")
	}
}
