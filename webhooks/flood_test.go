package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/pusher"
	"github.com/herald-rt/herald/webhooks"
)

// arrival is one event as a flood receiver saw it, and when.
type arrival struct {
	name string
	at   time.Time
}

// floodReceiver is the webhook receiver of TestFloodKeepsMemberEventsAndOtherApps: it answers
// every request after latency, as a backend that writes to a database would, checks each request
// the way a server SDK does, and keeps what the test asserts on. Guarded by mu.
type floodReceiver struct {
	t       *testing.T
	latency time.Duration
	secrets map[string]string // X-Pusher-Key -> secret

	watched
	member      map[string][]arrival // presence channel -> its events in the order received
	floodState  map[string]string    // flood channel -> last event received for it
	floodBad    int                  // flood events that broke occupied/vacated alternation
	floodEvents int
	requestsA   int
	maxPerReq   int
	bLatency    []time.Duration // per client event of app B, from Emit to arrival
	bSeen       map[int]int     // app B client event seq -> times received
}

func (fr *floodReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	hook := verifiedWebhook(fr.t, r, fr.secrets)
	fr.mu.Lock()
	if r.URL.Path == "/a" {
		fr.requestsA++
		fr.maxPerReq = max(fr.maxPerReq, len(hook.Events))
	}
	for _, e := range hook.Events {
		switch {
		case strings.HasPrefix(e.Channel, "flood-"):
			fr.floodEvents++
			last := fr.floodState[e.Channel]
			if (e.Name == pusher.WebhookChannelOccupied) == (last == pusher.WebhookChannelOccupied) {
				fr.floodBad++
			}
			fr.floodState[e.Channel] = e.Name
		case e.Name == pusher.WebhookClientEvent:
			var d struct{ Seq, Sent int64 }
			if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
				fr.t.Errorf("client event data %q: %v", e.Data, err)
			}
			fr.bSeen[int(d.Seq)]++
			fr.bLatency = append(fr.bLatency, now.Sub(time.Unix(0, d.Sent)))
		default:
			fr.member[e.Channel] = append(fr.member[e.Channel], arrival{name: e.Name + ":" + e.UserID, at: now})
		}
	}
	fr.changedLocked()
	fr.mu.Unlock()
	time.Sleep(fr.latency) // the backend's work before it answers
}

// arrived returns when the watched channel's event name (name:user) arrived, if it did.
func (fr *floodReceiver) arrived(channel, name string) (arrival, bool) {
	for _, a := range fr.member[channel] {
		if a.name == name {
			return a, true
		}
	}
	return arrival{}, false
}

// TestFloodKeepsMemberEventsAndOtherApps is issue 9 item 1 in a few seconds: an anonymous client
// subscribes and unsubscribes unique public channels about 18 000 times a second (here several
// goroutines calling Emit, each keeping a few channels open at a time) on app A, whose receiver
// takes a few milliseconds per request. Meanwhile a real member joins and leaves a presence channel
// of app A, and app B, on its own endpoint, has its ordinary traffic. The member's four events
// arrive once each, in order and within seconds; every one of app B's events arrives, promptly;
// the flood's receiver never sees a vacated without its occupied; the counters say what was done.
func TestFloodKeepsMemberEventsAndOtherApps(t *testing.T) {
	const (
		floodFor       = 3 * time.Second
		pairsPerSecond = 18_000
		flooders       = 4
		openEach       = 2000 // channels each flooder keeps subscribed before it unsubscribes its oldest
		latency        = 3 * time.Millisecond
		grace          = time.Second // RemovalDelay
		bEvery         = 5 * time.Millisecond
		room, roomB    = "presence-room", "presence-b-room"
		member         = "real-1"
	)
	fr := &floodReceiver{
		t: t, latency: latency, secrets: map[string]string{"key-a": "secret-a", "key-b": "secret-b"},
		watched: newWatched(), member: map[string][]arrival{}, floodState: map[string]string{}, bSeen: map[int]int{},
	}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	d, err := webhooks.New(webhooks.Config{
		RemovalDelay: grace,
		Apps: []webhooks.App{
			{ID: "a", Key: "key-a", Secret: "secret-a", Endpoints: []webhooks.Endpoint{{URL: srv.URL + "/a"}}},
			{ID: "b", Key: "key-b", Secret: "secret-b", Endpoints: []webhooks.Endpoint{{URL: srv.URL + "/b"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Shutdown(context.Background()) }()

	begun := time.Now()
	end := begun.Add(floodFor)
	var wg sync.WaitGroup
	var floodPairs [flooders]int
	for g := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			name := func(i int) string { return fmt.Sprintf("flood-%d-%d", g, i) }
			i := 0
			for now := time.Now(); now.Before(end); now = <-tick.C {
				for due := int(now.Sub(begun).Seconds() * pairsPerSecond / flooders); i < due; i++ {
					d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: name(i)})
					if i >= openEach {
						d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: name(i - openEach)})
					}
				}
			}
			for j := max(0, i-openEach); j < i; j++ {
				d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: name(j)})
			}
			floodPairs[g] = i
		}()
	}
	bSent := 0
	wg.Add(1)
	go func() { // app B: a presence member for the whole flood, and a steady stream of client events
		defer wg.Done()
		d.Emit("b", pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: roomB})
		d.Emit("b", pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: roomB, UserID: "b-1"})
		tick := time.NewTicker(bEvery)
		defer tick.Stop()
		for now := time.Now(); now.Before(end); now = <-tick.C {
			data := fmt.Sprintf(`{"seq":%d,"sent":%d}`, bSent, time.Now().UnixNano())
			d.Emit("b", pusher.WebhookEvent{Name: pusher.WebhookClientEvent, Channel: "private-b", Event: "client-x", Data: data, SocketID: "1.1"})
			bSent++
		}
		d.Emit("b", pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: roomB, UserID: "b-1"})
		d.Emit("b", pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: roomB})
	}()

	// The real member joins half a second into the flood and leaves once its join was received,
	// no sooner than a second and a half into it.
	<-time.After(time.Until(begun.Add(500 * time.Millisecond)))
	joined := time.Now()
	d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookChannelOccupied, Channel: room})
	d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookMemberAdded, Channel: room, UserID: member})
	const limit = 10 * time.Second
	received := func() string {
		return fmt.Sprintf("app A %v, app B %v and %d client events", names(fr.member[room]), names(fr.member[roomB]), len(fr.bSeen))
	}
	fr.await(t, "the member's member_added arrives", limit, func() bool {
		_, ok := fr.arrived(room, pusher.WebhookMemberAdded+":"+member)
		return ok
	}, received)
	<-time.After(time.Until(begun.Add(1500 * time.Millisecond)))
	left := time.Now()
	d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookMemberRemoved, Channel: room, UserID: member})
	d.Emit("a", pusher.WebhookEvent{Name: pusher.WebhookChannelVacated, Channel: room})
	fr.await(t, "the member's member_removed and channel_vacated arrive", grace+limit, func() bool {
		_, ok := fr.arrived(room, pusher.WebhookChannelVacated+":")
		return ok
	}, received)
	wg.Wait()
	fr.await(t, "all of app B's events arrive", limit, func() bool {
		_, ok := fr.arrived(roomB, pusher.WebhookChannelVacated+":")
		return ok && len(fr.bSeen) == bSent
	}, received)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	st := d.Stats()

	fr.mu.Lock()
	defer fr.mu.Unlock()
	pairs := 0
	for _, n := range floodPairs {
		pairs += n
	}
	at := func(channel, name string) time.Time { a, _ := fr.arrived(channel, name); return a.at }
	slices.Sort(fr.bLatency)
	pct := func(p float64) time.Duration { return fr.bLatency[int(p*float64(len(fr.bLatency)-1))] }
	t.Logf("flood: %d pairs in %v (%.0f/s) on app A; receiver got %d flood events in %d requests (at most %d events in one)",
		pairs, floodFor, float64(pairs)/floodFor.Seconds(), fr.floodEvents, fr.requestsA, fr.maxPerReq)
	t.Logf("member: added %v after the join, removed %v after its delay ended; app A order %v",
		at(room, pusher.WebhookMemberAdded+":"+member).Sub(joined).Round(time.Millisecond),
		at(room, pusher.WebhookMemberRemoved+":"+member).Sub(left.Add(grace)).Round(time.Millisecond), names(fr.member[room]))
	t.Logf("app B: %d of %d client events, latency p50 %v p99 %v max %v; member order %v", len(fr.bSeen), bSent,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), names(fr.member[roomB]))
	t.Logf("stats: %+v", st)

	want := []string{pusher.WebhookChannelOccupied + ":", pusher.WebhookMemberAdded + ":" + member,
		pusher.WebhookMemberRemoved + ":" + member, pusher.WebhookChannelVacated + ":"}
	if got := names(fr.member[room]); !slices.Equal(got, want) {
		t.Errorf("app A's member events arrived as %v, want %v", got, want)
	}
	wantB := []string{pusher.WebhookChannelOccupied + ":", pusher.WebhookMemberAdded + ":b-1",
		pusher.WebhookMemberRemoved + ":b-1", pusher.WebhookChannelVacated + ":"}
	if got := names(fr.member[roomB]); !slices.Equal(got, wantB) {
		t.Errorf("app B's member events arrived as %v, want %v", got, wantB)
	}
	for seq, n := range fr.bSeen {
		if n != 1 {
			t.Errorf("app B's client event %d arrived %d times", seq, n)
		}
	}
	if late := pct(1); late > 2*time.Second {
		t.Errorf("an app B event took %v to arrive, want well under 2s", late)
	}
	if fr.floodBad != 0 {
		t.Errorf("%d flood events broke occupied/vacated alternation at the receiver", fr.floodBad)
	}
	if st.Coalesced == 0 || st.Packed == 0 || st.Queued != 0 || st.Backlogged != 0 {
		t.Errorf("stats = %+v: want pairs coalesced, requests packed, and nothing left queued or backlogged", st)
	}
	if n := st.Dropped[webhooks.DropShutdown] + st.Dropped[webhooks.DropRetryExpired]; n != 0 {
		t.Errorf("%d events dropped at shutdown or after retries; the receiver never failed", n)
	}
}

func names(as []arrival) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.name)
	}
	return out
}
