package channels_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

func TestPublicSubscribeAndUnsubscribe(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	ev := h.subscribe(c, "my-channel", nil)
	if ev.Data != "{}" {
		t.Errorf("subscription_succeeded data = %q, want \"{}\"", ev.Data)
	}
	// Without an auth key at all (Java, push.js).
	_ = c.Send(ctxT(t), []byte(`{"event":"pusher:subscribe","data":{"channel":"other"}}`))
	expectEvent(t, c, pusher.EventSubscriptionSucceeded, "other")
	// Idempotent re-subscribe: confirmed again, counted once.
	h.subscribe(c, "my-channel", nil)
	if ch, _ := h.rest.Channel(ctxT(t), "my-channel", "subscription_count"); ch == nil || *ch.SubscriptionCount != 1 {
		t.Errorf("subscription_count after re-subscribe = %+v, want 1", ch)
	}

	if _, err := h.rest.Trigger(ctxT(t), []string{"my-channel"}, "hello", `{"n":1}`, nil); err != nil {
		t.Fatal(err)
	}
	if ev := expectEvent(t, c, "hello", "my-channel"); ev.Data != `{"n":1}` {
		t.Errorf("data = %q", ev.Data)
	}
	_ = c.Unsubscribe(ctxT(t), "my-channel")
	_ = c.Unsubscribe(ctxT(t), "never-subscribed")
	roundTrip(t, c) // the server has handled both unsubscribes before the REST trigger below
	_, _ = h.rest.Trigger(ctxT(t), []string{"my-channel"}, "after-unsubscribe", "{}", nil)
	h.barrier(c, "other")
}

func TestChannelNameRules(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	h.subscribe(c, strings.Repeat("a", 164), nil)
	for _, name := range []string{strings.Repeat("b", 165), "has space", "sl/ash", "#foo", "#server-to-user-someone"} {
		_, err := c.SubscribeAndWait(ctxT(t), name, nil)
		if err == nil {
			t.Errorf("subscribe %q succeeded", name)
			continue
		}
		ev := expectEvent(t, c, pusher.EventSubscriptionError, name)
		if !strings.Contains(ev.Data, `"status":`) {
			t.Errorf("subscription_error data = %s", ev.Data)
		}
	}
	_ = c.Send(ctxT(t), []byte(`{"event":"pusher:subscribe","data":{}}`))
	if e := expectError(t, c); e.Code != nil {
		t.Errorf("missing channel: code %d, want null", *e.Code)
	}
	h.subscribe(c, "still-open", nil)
}

func TestPrivateChannelAuth(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	h.subscribe(c, "private-a", signed)
	h.subscribe(c, "private-encrypted-a", signed)

	expected := auth.SignChannel(key, secret, c.SocketID(), "private-b", "")
	otherSocket := auth.SignChannel(key, secret, "1.2", "private-b", "")
	for name, authString := range map[string]string{
		"wrong signature": key + ":" + strings.Repeat("0", 64),
		"other key":       "other-key:" + strings.TrimPrefix(expected, key+":"),
		"no colon":        "garbage",
		"empty":           "",
		"other socket id": otherSocket,
	} {
		_, err := c.SubscribeAndWait(ctxT(t), "private-b", func(string, string) (string, string, error) { return authString, "", nil })
		if err == nil {
			t.Errorf("%s: subscription succeeded", name)
			continue
		}
		ev := expectEvent(t, c, pusher.EventSubscriptionError, "private-b")
		if !strings.Contains(ev.Data, `"status":401`) || !strings.Contains(ev.Data, "AuthError") {
			t.Errorf("%s: subscription_error = %s, want AuthError 401", name, ev.Data)
		}
		if sig := strings.TrimPrefix(expected, key+":"); name != "other key" && strings.Contains(ev.Data, sig) {
			t.Errorf("%s: the error reveals the expected signature", name)
		}
	}
	h.subscribe(c, "private-b", signed)
}

func TestEncryptedDataRelayedUntouched(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	h.subscribe(c, "private-encrypted-x", signed)
	data := `{"nonce":"c29tZSBub25jZQ==","ciphertext":"Y2lwaGVy/+=="}`
	if _, err := h.rest.Trigger(ctxT(t), []string{"private-encrypted-x"}, "secret", data, nil); err != nil {
		t.Fatal(err)
	}
	if ev := expectEvent(t, c, "secret", "private-encrypted-x"); ev.Data != data {
		t.Errorf("data = %q, want it byte-identical", ev.Data)
	}
}

func TestPresenceOverTheWire(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	ev := h.subscribe(a, "presence-room", presenceAs("ann"))
	var p struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &p); err != nil || p.Presence.Count != 1 || string(p.Presence.Hash["ann"]) != `{"name":"ann"}` {
		t.Fatalf("presence payload %s (%v)", ev.Data, err)
	}
	// Numeric user ids are echoed as strings.
	h.subscribe(b, "presence-room", clients.SignedAuthorizer(key, secret, func(string) string { return `{"user_id":10}` }))
	if ev := expectEvent(t, a, pusher.EventMemberAdded, "presence-room"); ev.Data != `{"user_id":"10","user_info":null}` {
		t.Errorf("member_added = %s", ev.Data)
	}
	users, err := h.rest.Users(ctxT(t), "presence-room")
	if err != nil || len(users.Users) != 2 {
		t.Fatalf("users = %+v, %v", users, err)
	}
	_ = b.Close()
	if ev := expectEvent(t, a, pusher.EventMemberRemoved, "presence-room"); ev.Data != `{"user_id":"10"}` {
		t.Errorf("member_removed = %s", ev.Data)
	}
	// Presence without channel_data, not signed in: refused.
	c := h.dial(nil)
	if _, err := c.SubscribeAndWait(ctxT(t), "presence-room", clients.SignedAuthorizer(key, secret, nil)); err == nil {
		t.Error("presence subscription without channel_data succeeded")
	}
	// channel_data without user_id: refused.
	if _, err := c.SubscribeAndWait(ctxT(t), "presence-room", clients.SignedAuthorizer(key, secret, func(string) string { return `{"user_info":{}}` })); err == nil {
		t.Error("presence subscription without user_id succeeded")
	}
}

func TestClientEvents(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	for _, c := range []*clients.Conn{a, b} {
		h.subscribe(c, "private-chat", signed)
	}
	h.subscribe(a, "presence-chat", presenceAs("ann"))
	h.subscribe(b, "presence-chat", presenceAs("bob"))
	expectEvent(t, a, pusher.EventMemberAdded, "presence-chat")
	h.subscribe(a, "only-a", nil) // barrier channels, one per connection
	h.subscribe(b, "only-b", nil)

	if err := a.Trigger(ctxT(t), "private-chat", "client-typing", map[string]any{"who": "ann"}); err != nil {
		t.Fatal(err)
	}
	ev := expectEvent(t, b, "client-typing", "private-chat")
	if ev.Data != `{"who":"ann"}` || ev.UserID != "" {
		t.Errorf("private client event = %+v, want string data and no user_id", ev)
	}
	_ = a.Trigger(ctxT(t), "presence-chat", "client-wave", "already a string")
	if ev := expectEvent(t, b, "client-wave", "presence-chat"); ev.UserID != "ann" || ev.Data != "already a string" {
		t.Errorf("presence client event = %+v, want user_id ann and the string unchanged", ev)
	}
	h.barrier(a, "only-a") // not echoed to the sender: a's next event is the barrier
	h.barrier(b, "only-b")

	rejected := map[string]func() error{
		"public channel":    func() error { return a.Trigger(ctxT(t), "public", "client-x", "{}") },
		"encrypted channel": func() error { return a.Trigger(ctxT(t), "private-encrypted-x", "client-x", "{}") },
		"not subscribed":    func() error { return a.Trigger(ctxT(t), "private-other", "client-x", "{}") },
		"no client- prefix": func() error { return a.Trigger(ctxT(t), "private-chat", "typing", "{}") },
		"data over 10 KB":   func() error { return a.Trigger(ctxT(t), "private-chat", "client-x", strings.Repeat("x", 10241)) },
		"event name too long": func() error {
			return a.Trigger(ctxT(t), "private-chat", "client-"+strings.Repeat("x", 200), "{}")
		},
	}
	for name, send := range rejected {
		if err := send(); err != nil {
			t.Fatal(err)
		}
		if e := expectError(t, a); e.Code != nil {
			t.Errorf("%s: code %d, want null", name, *e.Code)
		}
	}
	h.barrier(b, "only-b") // none of them reached b

	h.barrier(b, "only-b")
}

func TestClientEventRateLimit(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	for _, c := range []*clients.Conn{a, b} {
		h.subscribe(c, "private-chat", signed)
	}
	h.subscribe(b, "only-b", nil)
	// The 11th event within a second is refused with 4301 and the socket stays open. Eleven frames sent
	// back to back reach the server well within one rate window.
	for range 11 {
		_ = a.Trigger(ctxT(t), "private-chat", "client-burst", "{}")
	}
	if e := expectError(t, a); e.Code == nil || *e.Code != pusher.CodeClientEventLimit {
		t.Errorf("11th event: %+v, want code 4301", e)
	}
	for range 10 {
		expectEvent(t, b, "client-burst", "private-chat")
	}
	h.barrier(b, "only-b")
	roundTrip(t, a)
}

// roundTrip pings and waits for the pong: the server has handled every frame sent before.
func roundTrip(t *testing.T, c *clients.Conn) {
	t.Helper()
	if err := c.Send(ctxT(t), []byte(`{"event":"pusher:ping"}`)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, pusher.EventPong, "")
}

func TestClientEventsDisabled(t *testing.T) {
	app := defaultApp()
	app.ClientEvents = false
	h := start(t, channels.Config{Apps: []pusher.App{app}})
	a := h.dial(nil)
	h.subscribe(a, "private-chat", signed)
	_ = a.Trigger(ctxT(t), "private-chat", "client-x", "{}")
	if e := expectError(t, a); !strings.Contains(e.Message, "enable") {
		t.Errorf("error = %q, want Pusher's enable-the-feature message", e.Message)
	}
}

// TestMalformedInputHarmsNoOne sends a burst of garbage on one connection while another keeps receiving
// every triggered event in order; the garbage sender keeps its connection and still answers a ping.
func TestMalformedInputHarmsNoOne(t *testing.T) {
	h := start(t, channels.Config{MaxFrameBytes: 16 << 10})
	victim, attacker := h.dial(nil), h.dial(nil)
	h.subscribe(victim, "feed", nil)

	garbage := [][]byte{
		[]byte(`not json`), []byte(`{"event":`), []byte(`[]`), []byte(`{"data":{}}`), []byte(`{"event":12}`),
		[]byte(`{"event":"pusher:subscribe","data":"not an object"}`),
		[]byte(`{"event":"pusher:subscribe","data":{"channel":"bad name"}}`),
		[]byte(`{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"::::"}}`),
		[]byte(`{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:s","channel_data":"{"}}`),
		[]byte(`{"event":"client-x","channel":"feed","data":{}}`),
		[]byte(`{"event":"unknown:event"}`),
		[]byte(`{"event":"pusher:subscribe","data":{"channel":"` + strings.Repeat("z", 20<<10) + `"}}`), // oversized frame
	}
	const events = 50
	errs := make(chan error, 1)
	go func() {
		for i := range events {
			if _, err := h.rest.Trigger(ctxT(t), []string{"feed"}, "tick", itoa(i), nil); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for round := range 5 {
		for _, g := range garbage {
			if err := attacker.Send(ctxT(t), g); err != nil {
				t.Fatalf("round %d: attacker disconnected: %v", round, err)
			}
		}
		_ = attacker.SendBinary(ctxT(t), []byte{0, 1, 2, 3})
	}
	for i := range events {
		ev := expectEvent(t, victim, "tick", "feed")
		if ev.Data != itoa(i) {
			t.Fatalf("event %d carried %q: lost or reordered", i, ev.Data)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	_ = attacker.Send(ctxT(t), []byte(`{"event":"pusher:ping"}`))
	if _, err := attacker.WaitFor(ctxT(t), func(e clients.Event) bool { return e.Event == pusher.EventPong }); err != nil {
		t.Fatalf("attacker's connection did not survive: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
