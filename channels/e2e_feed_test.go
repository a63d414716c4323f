package channels_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// nextBatch waits for w's next batch.
func nextBatch(t *testing.T, w *channels.Watch) channels.FeedBatch {
	t.Helper()
	select {
	case b := <-w.C:
		var batch channels.FeedBatch
		if err := json.Unmarshal(b, &batch); err != nil {
			t.Fatalf("batch %s: %v", b, err)
		}
		return batch
	case <-time.After(5 * time.Second):
		t.Fatal("no feed batch within 5 s")
		return channels.FeedBatch{}
	}
}

// collect reads w's batches until one holds an event matching want, and returns the events read.
func collect(t *testing.T, w *channels.Watch, want func(channels.FeedEvent) bool) []channels.FeedEvent {
	t.Helper()
	var seen []channels.FeedEvent
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range nextBatch(t, w).Events {
			seen = append(seen, e)
			if want(e) {
				return seen
			}
		}
	}
	t.Fatalf("no matching feed event within 5 s; seen %+v", seen)
	return nil
}

func TestFeedReportsAnAppsLifeToItsWatchers(t *testing.T) {
	other := pusher.App{ID: "2", Key: "other-key", Secret: "other-secret", Enabled: true}
	h := start(t, channels.Config{Apps: []pusher.App{defaultApp(), other}})
	if h.srv.Watching(appID) {
		t.Fatal("an app nobody watches is watched")
	}
	w, err := h.srv.Watch(ctxT(t), appID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !h.srv.Watching(appID) || h.srv.Watching("2") {
		t.Fatal("Watch did not make exactly its app watched")
	}

	c := h.dial(nil)
	h.subscribe(c, "presence-room", presenceAs("ann"))
	if err := c.Trigger(ctxT(t), "presence-room", "client-typing", `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.rest.Trigger(ctxT(t), []string{"news", "weather"}, "headline", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctxT(t), []byte(`{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"bad"}}`)); err != nil {
		t.Fatal(err)
	}
	// The other app's traffic must not reach this watcher.
	otherREST := clients.NewREST(clients.RESTConfig{BaseURL: h.http.URL, AppID: "2", Key: "other-key", Secret: "other-secret"})
	if _, err := otherREST.Trigger(ctxT(t), []string{"secret-of-2"}, "leak", "{}", nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	events := collect(t, w, func(e channels.FeedEvent) bool { return e.Kind == channels.FeedUnsubscribe }) // after the disconnect
	byKind := map[channels.FeedKind]channels.FeedEvent{}
	for _, e := range events {
		byKind[e.Kind] = e
		if e.Channel == "secret-of-2" || (len(e.Channels) > 0 && e.Channels[0] == "secret-of-2") {
			t.Fatalf("app 2's publish reached app 1's watcher: %+v", e)
		}
	}
	sid := byKind[channels.FeedConnect].SocketID
	if !pusher.ValidSocketID(sid) {
		t.Fatalf("connect event %+v has no socket id", byKind[channels.FeedConnect])
	}
	checks := []struct {
		kind channels.FeedKind
		ok   func(channels.FeedEvent) bool
	}{
		{channels.FeedSubscribe, func(e channels.FeedEvent) bool {
			return e.Channel == "presence-room" && e.UserID == "ann" && e.SocketID == sid
		}},
		{channels.FeedClientEvent, func(e channels.FeedEvent) bool {
			return e.Event == "client-typing" && e.Detail == `{"n":1}` && e.Size == 7
		}},
		{channels.FeedPublish, func(e channels.FeedEvent) bool {
			return e.Event == "headline" && len(e.Channels) == 2 && e.Size == 7
		}},
		{channels.FeedError, func(e channels.FeedEvent) bool { return e.SocketID == sid && e.Code == 0 && e.Detail != "" }},
		{channels.FeedUnsubscribe, func(e channels.FeedEvent) bool { return e.Channel == "presence-room" }},
		{channels.FeedDisconnect, func(e channels.FeedEvent) bool { return e.SocketID == sid }},
	}
	for _, c := range checks {
		if e, ok := byKind[c.kind]; !ok || !c.ok(e) {
			t.Errorf("%s: got %+v", c.kind, e)
		}
	}
}

func TestFeedCountsConnectionsAndBoundsItsBatches(t *testing.T) {
	h := start(t, channels.Config{})
	w, err := h.srv.Watch(ctxT(t), appID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	h.dial(nil)
	h.dial(nil)
	for {
		if b := nextBatch(t, w); b.Connections == 2 {
			break
		}
	}
	// More events in one flush interval than a batch holds: the rest are counted, not kept.
	const n = 2000
	for i := range n {
		h.srv.Note(appID, channels.FeedEvent{Kind: channels.FeedPublish, Event: "e" + strconv.Itoa(i)})
	}
	got, dropped := 0, 0
	for got+dropped < n {
		b := nextBatch(t, w)
		got += len(b.Events)
		dropped += b.Dropped
		if len(b.Events) > 500 {
			t.Fatalf("a batch of %d events, more than the bound", len(b.Events))
		}
	}
	if dropped == 0 {
		t.Fatalf("%d events noted at once all kept: the batch is not bounded", n)
	}
}

func TestFeedWatcherThatFallsBehindMissesBatches(t *testing.T) {
	h := start(t, channels.Config{})
	w, err := h.srv.Watch(ctxT(t), appID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Nobody reads w.C: its queue fills, then batches are dropped and counted.
	deadline := time.Now().Add(20 * time.Second)
	for w.Missed() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a watcher that reads nothing missed no batch")
		}
		h.srv.Note(appID, channels.FeedEvent{Kind: channels.FeedPublish})
		time.Sleep(20 * time.Millisecond) // paces the notes across flushes; nothing is awaited here
	}
	if len(w.C) != cap(w.C) {
		t.Fatalf("missed batches with %d of %d queued", len(w.C), cap(w.C))
	}
}
