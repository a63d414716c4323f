package channels_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
)

func TestTriggerDelivery(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	for _, c := range []*clients.Conn{a, b} {
		h.subscribe(c, "one", nil)
		h.subscribe(c, "two", nil)
	}
	// Multi-channel trigger: one copy per channel; socket_id exclusion spares a.
	if _, err := h.rest.Trigger(ctxT(t), []string{"one", "two", "one"}, "multi", `"x"`, &clients.TriggerOptions{SocketID: a.SocketID()}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, b, "multi", "one")
	expectEvent(t, b, "multi", "two")
	h.subscribe(a, "only-a", nil)
	h.barrier(a, "only-a")

	// PHP's single "channel" form.
	status, body, err := h.rest.Do(ctxT(t), "POST", "/apps/"+appID+"/events", nil, []byte(`{"name":"php","data":"{}","channel":"one"}`))
	if err != nil || status != 200 || string(body) != "{}\n" {
		t.Fatalf("single-channel trigger = %d %s %v", status, body, err)
	}
	expectEvent(t, a, "php", "one")

	resp, err := h.rest.TriggerBatch(ctxT(t), []clients.BatchEvent{
		{Channel: "one", Name: "b1", Data: "1"}, {Channel: "two", Name: "b2", Data: "2", Info: "subscription_count"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Batch) != 2 || resp.Batch[0].SubscriptionCount != nil || *resp.Batch[1].SubscriptionCount != 2 {
		t.Errorf("batch info = %+v, want index-aligned attributes", resp.Batch)
	}
	expectEvent(t, a, "b1", "one")
	expectEvent(t, a, "b2", "two")
}

func TestTriggerInfo(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	h.subscribe(a, "presence-p", presenceAs("ann"))
	h.subscribe(b, "presence-p", presenceAs("ann"))
	h.subscribe(a, "plain", nil)
	resp, err := h.rest.Trigger(ctxT(t), []string{"presence-p", "plain"}, "e", "{}", &clients.TriggerOptions{Info: "user_count,subscription_count"})
	if err != nil {
		t.Fatal(err)
	}
	p, plain := resp.Channels["presence-p"], resp.Channels["plain"]
	if p.UserCount == nil || *p.UserCount != 1 || *p.SubscriptionCount != 2 {
		t.Errorf("presence-p = %+v, want 1 user on 2 subscriptions", p)
	}
	if plain.UserCount != nil || *plain.SubscriptionCount != 1 {
		t.Errorf("plain = %+v, want no user_count and 1 subscription", plain)
	}
}

func TestChannelQueries(t *testing.T) {
	h := start(t, channels.Config{})
	empty, err := h.rest.Channels(ctxT(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	status, raw, _ := h.rest.Do(ctxT(t), "GET", "/apps/"+appID+"/channels", nil, nil)
	if status != 200 || strings.TrimSpace(string(raw)) != `{"channels":{}}` || len(empty.Channels) != 0 {
		t.Errorf("no channels = %d %s, want exactly {\"channels\":{}}", status, raw)
	}

	a := h.dial(nil)
	h.subscribe(a, "presence-room", presenceAs("ann"))
	h.subscribe(a, "public-1", nil)
	all, err := h.rest.Channels(ctxT(t), "", "")
	if err != nil || len(all.Channels) != 2 {
		t.Fatalf("channels = %+v, %v", all, err)
	}
	pres, err := h.rest.Channels(ctxT(t), "presence-", "user_count")
	if err != nil || len(pres.Channels) != 1 || *pres.Channels["presence-room"].UserCount != 1 {
		t.Errorf("presence channels = %+v, %v", pres, err)
	}
	if _, err := h.rest.Channels(ctxT(t), "", "user_count"); statusOf(err) != 400 {
		t.Errorf("user_count without presence- prefix: %v, want 400", err)
	}

	ch, err := h.rest.Channel(ctxT(t), "presence-room", "user_count,subscription_count")
	if err != nil || !ch.Occupied || *ch.UserCount != 1 || *ch.SubscriptionCount != 1 {
		t.Errorf("presence-room = %+v, %v", ch, err)
	}
	status, raw, _ = h.rest.Do(ctxT(t), "GET", "/apps/"+appID+"/channels/nobody-here", nil, nil)
	if status != 200 || strings.TrimSpace(string(raw)) != `{"occupied":false}` {
		t.Errorf("unoccupied channel = %d %s", status, raw)
	}
	if _, err := h.rest.Channel(ctxT(t), "public-1", "user_count"); statusOf(err) != 400 {
		t.Errorf("user_count on a public channel: %v, want 400", err)
	}
	if _, err := h.rest.Channel(ctxT(t), "public-1", "cache"); statusOf(err) != 400 {
		t.Errorf("cache on a non-cache channel: %v, want 400", err)
	}
	users, err := h.rest.Users(ctxT(t), "presence-room")
	if err != nil || len(users.Users) != 1 || users.Users[0].ID != "ann" {
		t.Errorf("users = %+v, %v", users, err)
	}
	if _, err := h.rest.Users(ctxT(t), "public-1"); statusOf(err) != 400 {
		t.Errorf("users of a public channel: %v, want 400", err)
	}
}

func statusOf(err error) int {
	var se *clients.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func TestTriggerValidation(t *testing.T) {
	h := start(t, channels.Config{})
	a := h.dial(nil)
	h.subscribe(a, "watched", nil)
	event := func(fields map[string]any) []byte {
		b, _ := json.Marshal(fields)
		return b
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "c" + itoa(i)
	}
	tests := []struct {
		name   string
		body   []byte
		status int
	}{
		{"101 channels", event(map[string]any{"name": "e", "data": "{}", "channels": many}), 400},
		{"data 10,241 bytes", event(map[string]any{"name": "e", "data": strings.Repeat("x", 10241), "channels": []string{"watched"}}), 413},
		{"name 201 chars", event(map[string]any{"name": strings.Repeat("n", 201), "data": "{}", "channels": []string{"watched"}}), 400},
		{"reserved name", event(map[string]any{"name": "pusher:foo", "data": "{}", "channels": []string{"watched"}}), 400},
		{"missing name", event(map[string]any{"data": "{}", "channels": []string{"watched"}}), 400},
		{"missing data", event(map[string]any{"name": "e", "channels": []string{"watched"}}), 400},
		{"missing channels", event(map[string]any{"name": "e", "data": "{}"}), 400},
		{"bad socket_id", event(map[string]any{"name": "e", "data": "{}", "channels": []string{"watched"}, "socket_id": "abc"}), 400},
		{"bad channel name", event(map[string]any{"name": "e", "data": "{}", "channels": []string{"bad name"}}), 400},
		{"encrypted mixed", event(map[string]any{"name": "e", "data": "{}", "channels": []string{"private-encrypted-a", "watched"}}), 400},
		{"invalid JSON", []byte(`{"name":`), 400},
	}
	for _, tt := range tests {
		status, body, err := h.rest.Do(ctxT(t), "POST", "/apps/"+appID+"/events", nil, tt.body)
		if err != nil || status != tt.status {
			t.Errorf("%s: %d %s (%v), want %d", tt.name, status, body, err, tt.status)
		}
	}
	ok := event(map[string]any{"name": "e", "data": strings.Repeat("x", 10240), "channels": []string{"watched"}})
	if status, body, _ := h.rest.Do(ctxT(t), "POST", "/apps/"+appID+"/events", nil, ok); status != 200 {
		t.Errorf("data of exactly 10,240 bytes: %d %s, want 200", status, body)
	}
	expectEvent(t, a, "e", "watched") // only the valid event arrived

	batch := make([]map[string]any, 11)
	for i := range batch {
		batch[i] = map[string]any{"name": "batched", "data": "{}", "channel": "watched"}
	}
	if status, _, _ := h.rest.Do(ctxT(t), "POST", "/apps/"+appID+"/batch_events", nil, event(map[string]any{"batch": batch})); status != 400 {
		t.Errorf("batch of 11: %d, want 400", status)
	}
	batch = batch[:3]
	batch[2] = map[string]any{"name": "pusher:bad", "data": "{}", "channel": "watched"}
	if status, _, _ := h.rest.Do(ctxT(t), "POST", "/apps/"+appID+"/batch_events", nil, event(map[string]any{"batch": batch})); status != 400 {
		t.Errorf("batch with one bad event: %d, want 400", status)
	}
	h.subscribe(a, "barrier-a", nil)
	h.barrier(a, "barrier-a") // nothing of either rejected batch was published
}

func TestRESTAuthentication(t *testing.T) {
	h := start(t, channels.Config{})
	path := "/apps/" + appID + "/events"
	body := []byte(`{"name":"e","data":"{}","channels":["c"]}`)
	send := func(q url.Values, body []byte, reqPath string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctxT(t), "POST", h.http.URL+reqPath+"?"+q.Encode(), strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		_, _ = io.Copy(&sb, resp.Body)
		return resp.StatusCode, sb.String()
	}
	now := time.Now()
	good := auth.SignRequest(key, secret, "POST", path, nil, body, now)
	if status, msg := send(good, body, path); status != 200 {
		t.Fatalf("valid request: %d %s", status, msg)
	}
	bad := auth.SignRequest(key, "wrong-secret", "POST", path, nil, body, now)
	status, msg := send(bad, body, path)
	if status != 401 || strings.Contains(msg, good.Get("auth_signature")) || !strings.Contains(msg, `POST\n/apps/1/events`) {
		t.Errorf("wrong secret: %d %q, want 401 showing the string to sign but not the signature", status, msg)
	}
	if status, _ := send(auth.SignRequest(key, secret, "POST", path, nil, body, now.Add(-601*time.Second)), body, path); status != 401 {
		t.Errorf("timestamp 601 s old: %d, want 401", status)
	}
	if status, _ := send(good, []byte(`{"name":"other","data":"{}","channels":["c"]}`), path); status != 401 {
		t.Errorf("body_md5 mismatch: %d, want 401", status)
	}
	if status, _ := send(auth.SignRequest("other-key", secret, "POST", path, nil, body, now), body, path); status != 401 {
		t.Errorf("foreign auth_key: %d, want 401", status)
	}
	if status, _ := send(good, body, "/apps/999/events"); status != 404 {
		t.Errorf("unknown app: %d, want 404", status)
	}
}

func TestRESTUnderPathPrefix(t *testing.T) {
	h := start(t, channels.Config{PathPrefix: "/admin/wss"})
	prefixed := clients.NewREST(clients.RESTConfig{BaseURL: h.http.URL + "/admin/wss", AppID: appID, Key: key, Secret: secret})
	c, err := clients.Dial(ctxT(t), h.wsURL("/admin/wss/app/"+key), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h.subscribe(c, "c", nil)
	if _, err := prefixed.Trigger(ctxT(t), []string{"c"}, "via-prefix", "{}", nil); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, "via-prefix", "c")
	// Signed for /apps/… but sent under the prefix, as a reverse proxy would forward it.
	q := auth.SignRequest(key, secret, "GET", "/apps/"+appID+"/channels", nil, nil, time.Now())
	resp, err := http.Get(h.http.URL + "/admin/wss/apps/" + appID + "/channels?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("prefixed path signed without prefix: %d, want 200", resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
	}
}
