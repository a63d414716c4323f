package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// floodReceiver is a webhook receiver that takes a few milliseconds per request, as a real one does,
// and records what each app's requests carried, in order.
type floodReceiver struct {
	mu     sync.Mutex
	events map[string][]pusher.WebhookEvent // by X-Pusher-Key
	seen   map[string]time.Time             // when an event (by key) first arrived
}

func (r *floodReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	time.Sleep(3 * time.Millisecond) // a receiver's own work, not synchronisation
	var hook pusher.Webhook
	if json.Unmarshal(body, &hook) != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := req.Header.Get("X-Pusher-Key")
	r.events[key] = append(r.events[key], hook.Events...)
	for _, e := range hook.Events {
		id := key + " " + e.Name + " " + e.Channel + " " + e.UserID
		if _, ok := r.seen[id]; !ok {
			r.seen[id] = time.Now()
		}
	}
}

// lifecycle returns the app's occupancy and member events on channel, in arrival order.
func (r *floodReceiver) lifecycle(key, channel string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events[key] {
		if e.Channel == channel {
			out = append(out, e.Name)
		}
	}
	return out
}

func (r *floodReceiver) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events[key])
}

// TestSubscribeFloodLosesNoOneElsesWebhooks is the flood of the hardening review, end to end: three
// anonymous clients of app A subscribe and unsubscribe unique public channels as fast as they can
// for three seconds, while a real presence member of app A joins and leaves, and so does one of app
// B. The flood is answered with 4303 (rate limit) rather than dropped silently; the members' events
// arrive in pairs and in order within seconds of their delay; and app B is untouched.
func TestSubscribeFloodLosesNoOneElsesWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-second flood")
	}
	rec := &floodReceiver{events: map[string][]pusher.WebhookEvent{}, seen: map[string]time.Time{}}
	receiver := httptest.NewServer(rec)
	defer receiver.Close()
	config := writeConfig(t, `{"webhook_delay": 1, "apps": [
		{"id": "a", "key": "ka", "secret": "sa", "webhooks": [{"url": "`+receiver.URL+`"}]},
		{"id": "b", "key": "kb", "secret": "sb", "webhooks": [{"url": "`+receiver.URL+`"}]}]}`)
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--config", config}, nil)
	base := "ws://" + addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const floodFor = 3 * time.Second
	floodCtx, stopFlood := context.WithTimeout(ctx, floodFor)
	defer stopFlood()
	var sent, admitted, refused atomic.Int64
	var flooders sync.WaitGroup
	for f := range 3 {
		ws, _, err := websocket.Dial(ctx, base+"/app/ka?protocol=7", nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(1 << 20)
		defer ws.CloseNow()
		flooders.Add(2)
		go func() { // reads every answer, counting the rate-limit refusals
			defer flooders.Done()
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					return
				}
				var frame pusher.ClientFrame
				switch {
				case json.Unmarshal(b, &frame) != nil:
				case frame.Event == pusher.EventSubscriptionSucceeded:
					admitted.Add(1)
				case frame.Event == pusher.EventError:
					if text, _ := pusher.TextOf(frame.Data); containsCode(text, pusher.CodeSubscribeLimit) {
						refused.Add(1)
					}
				}
			}
		}()
		go func() {
			defer flooders.Done()
			defer ws.Close(websocket.StatusNormalClosure, "")
			for i := 0; floodCtx.Err() == nil; i++ {
				ch := "flood-" + strconv.Itoa(f) + "-" + strconv.Itoa(i)
				for _, ev := range []string{pusher.EventSubscribe, pusher.EventUnsubscribe} {
					if ws.Write(ctx, websocket.MessageText, []byte(`{"event":"`+ev+`","data":{"channel":"`+ch+`"}}`)) != nil {
						return
					}
				}
				sent.Add(1)
			}
		}()
	}

	// The real members join and leave while the flood runs.
	join := func(key, secret, user string) *clients.Conn {
		c, err := clients.Dial(ctx, base+"/app/"+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		authorize := clients.SignedAuthorizer(key, secret, func(string) string { return `{"user_id":"` + user + `"}` })
		if _, err := c.SubscribeAndWait(ctx, "presence-room", authorize); err != nil {
			t.Fatal(err)
		}
		return c
	}
	time.Sleep(500 * time.Millisecond) // into the flood: the point of the test is timing, not synchronisation
	memberA, memberB := join("ka", "sa", "ann"), join("kb", "sb", "bob")
	time.Sleep(time.Second)
	_ = memberA.Close()
	_ = memberB.Close()
	left := time.Now()
	flooders.Wait()

	want := []string{pusher.WebhookChannelOccupied, pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved, pusher.WebhookChannelVacated}
	deadline := left.Add(1*time.Second + 5*time.Second) // the removal delay, then a few seconds
	for _, key := range []string{"ka", "kb"} {
		for {
			got := rec.lifecycle(key, "presence-room")
			if len(got) == len(want) {
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("app %s: presence-room events %v, want %v", key, got, want)
					}
				}
				break
			}
			if len(got) > len(want) || time.Now().After(deadline) {
				t.Fatalf("app %s: presence-room events %v by %v after the member left, want %v",
					key, got, time.Since(left).Round(time.Millisecond), want)
			}
			time.Sleep(20 * time.Millisecond) // polling the receiver with a deadline
		}
	}
	if n := rec.count("kb"); n != len(want) {
		t.Errorf("app B received %d events, want only its member's %d", n, len(want))
	}
	t.Logf("flood: %d subscribe/unsubscribe pairs sent, %d admitted, %d refused with 4303; app A's receiver got %d events",
		sent.Load(), admitted.Load(), refused.Load(), rec.count("ka"))
	if refused.Load() == 0 {
		t.Error("no subscribe was refused with 4303: the flood was not rate limited, or silently")
	}
	if n := admitted.Load(); n > 3*(10*10+10*int64(floodFor/time.Second)+10) {
		t.Errorf("%d subscribes admitted from three clients in %v, want at most each client's burst and rate", n, floodFor)
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}

// containsCode reports whether a pusher:error's data carries code.
func containsCode(data string, code int) bool {
	var d struct{ Code int }
	return json.Unmarshal([]byte(data), &d) == nil && d.Code == code
}
