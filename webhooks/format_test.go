package webhooks

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// TestRequestFormat: the headers and body every server SDK checks — Content-Type exactly
// application/json, the app key, the HMAC-SHA256 of the exact body, integer time_ms, string fields
// (decoded here into pusher-http-go's field types), custom headers that cannot override ours.
func TestRequestFormat(t *testing.T) {
	h := start(t, Config{}, Endpoint{URL: "http://hook.test/a", Headers: map[string]string{"X-Custom": "v1", "Authorization": "Bearer t"}})
	h.emit(clientEvent("presence-room", `{"html":"<b>&</b>"}`))
	r := h.rc.next(t)
	if got := r.Header.Values("Content-Type"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("Content-Type = %q, want exactly application/json", got)
	}
	if got := r.Header.Get("X-Pusher-Key"); got != testKey {
		t.Errorf("X-Pusher-Key = %q", got)
	}
	if got, want := r.Header.Get("X-Pusher-Signature"), sign(testSecret, r.Body); got != want {
		t.Errorf("X-Pusher-Signature = %q, want HMAC-SHA256 hex of the body %q", got, want)
	}
	if r.Header.Get("X-Custom") != "v1" || r.Header.Get("Authorization") != "Bearer t" {
		t.Errorf("custom headers missing: %v", r.Header)
	}
	// pusher-http-go's shapes: an int time and string fields; any other type fails the whole webhook.
	var goSDK struct {
		TimeMs int `json:"time_ms"`
		Events []struct {
			Name     string `json:"name"`
			Channel  string `json:"channel"`
			Event    string `json:"event"`
			Data     string `json:"data"`
			UserID   string `json:"user_id"`
			SocketID string `json:"socket_id"`
		} `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&goSDK); err != nil {
		t.Fatalf("pusher-http-go would reject %s: %v", r.Body, err)
	}
	if want := h.clock.Now().UnixMilli(); int64(goSDK.TimeMs) != want {
		t.Errorf("time_ms = %d, want %d", goSDK.TimeMs, want)
	}
	e := goSDK.Events[0]
	if len(goSDK.Events) != 1 || e.Name != "client_event" || e.Channel != "presence-room" || e.Event != "client-typing" ||
		e.Data != `{"html":"<b>&</b>"}` || e.SocketID != "1.2" {
		t.Errorf("events = %+v", goSDK.Events)
	}
	if !strings.HasPrefix(string(r.Body), `{"time_ms":`) {
		t.Errorf("body = %s", r.Body)
	}
}

// TestEndpointFiltersAndResigning: with batching, one batch is cut per endpoint by event type and
// channel prefix/suffix, and each cut is encoded and signed on its own.
func TestEndpointFiltersAndResigning(t *testing.T) {
	h := start(t, Config{Apps: []App{{
		ID: testAppID, Key: testKey, Secret: testSecret,
		Batching: Batching{Enabled: true},
		Endpoints: []Endpoint{
			{URL: "http://hook.test/all"},
			{URL: "http://hook.test/members", EventTypes: []string{"member_added", "member_removed"}, ChannelPrefix: "presence-"},
			{URL: "http://hook.test/orders", ChannelSuffix: "-orders", EventTypes: []string{"channel_occupied", "client_event"}},
			{URL: "http://hook.test/none", ChannelPrefix: "never-"},
		},
	}}})
	h.emit(occupied("presence-lobby"), added("presence-lobby", "u1"), occupied("shop-orders"),
		clientEvent("private-shop-orders", `{}`), added("presence-orders", "u2"))
	if moved := h.clock.fireNext(t); moved != defaultBatchWindow {
		t.Errorf("batch window = %v, want %v", moved, defaultBatchWindow)
	}
	got := map[string]received{}
	for range 3 {
		r := h.rc.next(t)
		got[r.URL] = r
		if want := sign(testSecret, r.Body); r.Header.Get("X-Pusher-Signature") != want {
			t.Errorf("%s: signature is not the HMAC of its own (filtered) body", r.URL)
		}
	}
	want := map[string]string{
		"http://hook.test/all": "channel_occupied:presence-lobby member_added:presence-lobby:u1 channel_occupied:shop-orders " +
			"client_event:private-shop-orders member_added:presence-orders:u2",
		"http://hook.test/members": "member_added:presence-lobby:u1 member_added:presence-orders:u2",
		"http://hook.test/orders":  "channel_occupied:shop-orders client_event:private-shop-orders",
	}
	for url, w := range want {
		if g := strings.Join(got[url].names(), " "); g != w {
			t.Errorf("%s got [%s], want [%s]", url, g, w)
		}
	}
	h.settled()
	if n := len(h.rc.reqs); n != 0 {
		t.Errorf("%d unexpected requests (the endpoint whose filter matches nothing must get none)", n)
	}
}

// TestWebmanNaming: a webman endpoint gets channel_added/channel_removed/user_added/user_removed
// with an integer time_ms and, by default, only those four types; a Pusher endpoint of the same app
// keeps Pusher's names.
func TestWebmanNaming(t *testing.T) {
	h := start(t, Config{RemovalDelay: -1},
		Endpoint{URL: "http://hook.test/webman", Naming: NamingWebman},
		Endpoint{URL: "http://hook.test/webman-all", Naming: NamingWebman, EventTypes: []string{"user_added", "client_event"}},
	)
	byURL := map[string][]string{}
	receive := func(n int) {
		for range n {
			r := h.rc.next(t)
			if !isInteger(t, r.Body) {
				t.Errorf("time_ms is not an integer: %s", r.Body)
			}
			byURL[r.URL] = append(byURL[r.URL], r.names()...)
		}
	}
	h.emit(occupied("presence-r"), added("presence-r", "7"), clientEvent("presence-r", `{}`))
	receive(4) // sent, so that the removals do not cancel them
	h.emit(removed("presence-r", "7"), vacated("presence-r"))
	receive(2)
	if g, w := strings.Join(byURL["http://hook.test/webman"], " "),
		"channel_added:presence-r user_added:presence-r:7 user_removed:presence-r:7 channel_removed:presence-r"; g != w {
		t.Errorf("webman endpoint got [%s], want [%s]", g, w)
	}
	if g, w := strings.Join(byURL["http://hook.test/webman-all"], " "), "user_added:presence-r:7 client_event:presence-r"; g != w {
		t.Errorf("webman endpoint with types got [%s], want [%s]", g, w)
	}
}

func isInteger(t *testing.T, body []byte) bool {
	t.Helper()
	var v struct {
		TimeMs json.Number `json:"time_ms"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	_, err := v.TimeMs.Int64()
	return err == nil
}

// TestBatchingOrderAndEncryptedRule: batches keep occurrence order, go out when full or when the
// window ends, and an event on a private-encrypted- channel always travels alone (pusher-http-php
// would throw on it and lose the rest of the request).
func TestBatchingOrderAndEncryptedRule(t *testing.T) {
	h := start(t, Config{Apps: []App{{
		ID: testAppID, Key: testKey, Secret: testSecret,
		Batching:  Batching{Enabled: true, Window: 100 * time.Millisecond, MaxEvents: 3},
		Endpoints: []Endpoint{{URL: "http://hook.test/"}},
	}}})
	h.emit(occupied("a"), occupied("private-encrypted-x"), occupied("b"), occupied("c"),
		clientEvent("private-encrypted-x", `{"ciphertext":"..."}`), occupied("d"), occupied("e"), occupied("f"), occupied("g"))
	h.rc.expect(t,
		"channel_occupied:a",
		"channel_occupied:private-encrypted-x",
		"channel_occupied:b channel_occupied:c",
		"client_event:private-encrypted-x",
		"channel_occupied:d channel_occupied:e channel_occupied:f",
	)
	if moved := h.clock.fireNext(t); moved != 100*time.Millisecond {
		t.Errorf("window = %v", moved)
	}
	h.rc.expect(t, "channel_occupied:g")
	if st := h.d.Stats(); st.DroppedTotal() != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestUnbatchedOneEventPerRequest: without batching every request carries exactly one event, in order.
func TestUnbatchedOneEventPerRequest(t *testing.T) {
	h := start(t, Config{})
	var want []string
	for i := range 20 {
		ch := "c" + string(rune('a'+i))
		h.emit(occupied(ch))
		want = append(want, "channel_occupied:"+ch)
	}
	h.rc.expect(t, want...)
}

// TestUnwantedEventsAreNotQueued: events of unknown apps or of types no endpoint takes never reach
// the queue, while a debounced pair is tracked whole when either half is wanted.
func TestUnwantedEventsAreNotQueued(t *testing.T) {
	h := start(t, Config{RemovalDelay: -1}, Endpoint{URL: "http://hook.test/", EventTypes: []string{"channel_vacated"}})
	h.d.Emit("other-app", occupied("x"))
	h.emit(clientEvent("private-x", "{}"), added("presence-x", "u"))
	h.emit(occupied("x"), vacated("x"))
	h.rc.expect(t, "channel_vacated:x")
	if !h.d.apps.Load().byID[testAppID].wanted[pusher.WebhookChannelOccupied] || h.d.apps.Load().byID[testAppID].wanted[pusher.WebhookMemberAdded] {
		t.Errorf("wanted = %v", h.d.apps.Load().byID[testAppID].wanted)
	}
	if n := len(h.occupancy()); n != 0 {
		t.Errorf("%d debounce entries; unwanted member events must not be tracked", n)
	}
}

// TestCountAndCacheMissPassThrough: cache_miss and subscription_count are not debounced, and the
// count stays an integer, zero included.
func TestCountAndCacheMissPassThrough(t *testing.T) {
	h := start(t, Config{})
	zero, two := 0, 2
	h.emit(pusher.WebhookEvent{Name: pusher.WebhookCacheMiss, Channel: "cache-news"},
		pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: "room", SubscriptionCount: &two},
		pusher.WebhookEvent{Name: pusher.WebhookSubscriptionCount, Channel: "hall", SubscriptionCount: &zero})
	got := h.rc.expect(t, "cache_miss:cache-news", "subscription_count:room", "subscription_count:hall")
	if !strings.HasSuffix(string(got[0].Body), `"events":[{"name":"cache_miss","channel":"cache-news"}]}`) ||
		!strings.HasSuffix(string(got[1].Body), `"events":[{"name":"subscription_count","channel":"room","subscription_count":2}]}`) ||
		!strings.HasSuffix(string(got[2].Body), `"events":[{"name":"subscription_count","channel":"hall","subscription_count":0}]}`) {
		t.Errorf("bodies = %s | %s | %s", got[0].Body, got[1].Body, got[2].Body)
	}
}
