package channels_test

import (
	"bytes"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// TestOriginAllowlist: an app with allowed_origins refuses a foreign origin at the handshake with
// 4009, accepts its own and clients that send no Origin, and counts the refusal; other apps are
// untouched.
func TestOriginAllowlist(t *testing.T) {
	strict := pusher.App{ID: "2", Key: "strict-key", Secret: "s", Enabled: true, AllowedOrigins: []string{"https://shop.example", "*.shop.example"}}
	h := start(t, channels.Config{Apps: []pusher.App{defaultApp(), strict}})
	dial := func(appKey, origin string) (*clients.Conn, error) {
		var hdr http.Header
		if origin != "" {
			hdr = http.Header{"Origin": {origin}}
		}
		c, err := clients.Dial(ctxT(t), h.wsURL("/app/"+appKey), &clients.DialOptions{Header: hdr})
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, err
	}
	_, err := dial("strict-key", "https://evil.example")
	expectRefusal(t, err, pusher.CodeUnauthorized)
	for _, origin := range []string{"https://shop.example", "https://eu.shop.example", ""} {
		if _, err := dial("strict-key", origin); err != nil {
			t.Errorf("origin %q refused: %v", origin, err)
		}
	}
	if _, err := dial(key, "https://evil.example"); err != nil {
		t.Errorf("an app without an allowlist refused a foreign origin: %v", err)
	}
	if got := refused(h, "2", channels.RefusedOrigin); got != 1 {
		t.Errorf("origin refusals counted %d, want 1", got)
	}
}

// TestConnectionRatePerAddress: past connections_per_second_per_ip (a burst of ten times it) a
// client address is refused with 4100; behind a trusted proxy the address is X-Forwarded-For's, so
// another client of the same proxy still connects; an untrusted peer cannot pick its address.
func TestConnectionRatePerAddress(t *testing.T) {
	limited := pusher.App{ID: "2", Key: "lim-key", Secret: "s", Enabled: true, ConnectionsPerSecondPerIP: 1}
	h := start(t, channels.Config{Apps: []pusher.App{limited},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	dial := func(forwardedFor string) error {
		c, err := clients.Dial(ctxT(t), h.wsURL("/app/lim-key"), &clients.DialOptions{Header: http.Header{"X-Forwarded-For": {forwardedFor}}})
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	for i := range 10 { // the burst
		if err := dial("203.0.113.7"); err != nil {
			t.Fatalf("connection %d of the burst refused: %v", i+1, err)
		}
	}
	expectRefusal(t, dial("203.0.113.7"), pusher.CodeOverCapacity)
	if err := dial("203.0.113.8"); err != nil {
		t.Errorf("another address behind the same proxy was refused: %v", err)
	}
	if got := refused(h, "2", channels.RefusedConnection); got != 1 {
		t.Errorf("connection refusals counted %d, want 1", got)
	}

	untrusted := start(t, channels.Config{Apps: []pusher.App{limited}})
	for i := range 10 {
		c, err := clients.Dial(ctxT(t), untrusted.wsURL("/app/lim-key"), &clients.DialOptions{Header: http.Header{"X-Forwarded-For": {"198.51.100." + strconv.Itoa(i)}}})
		if err != nil {
			t.Fatalf("connection %d refused: %v", i+1, err)
		}
		_ = c.Close()
	}
	_, err := clients.Dial(ctxT(t), untrusted.wsURL("/app/lim-key"), &clients.DialOptions{Header: http.Header{"X-Forwarded-For": {"198.51.100.99"}}})
	expectRefusal(t, err, pusher.CodeOverCapacity) // X-Forwarded-For from an untrusted peer changes nothing
}

// TestPublishRate: past publishes_per_second a REST publish gets 429 with Retry-After, a batch
// counting each of its events, and nothing of a refused publish is delivered.
func TestPublishRate(t *testing.T) {
	limited := defaultApp()
	limited.PublishesPerSecond = 1
	h := start(t, channels.Config{Apps: []pusher.App{limited}})
	c := h.dial(nil)
	h.subscribe(c, "room", nil)
	batch := make([]clients.BatchEvent, 5)
	for i := range batch {
		batch[i] = clients.BatchEvent{Channel: "room", Name: "b", Data: strconv.Itoa(i)}
	}
	if _, err := h.rest.TriggerBatch(ctxT(t), batch); err != nil { // 5 of the burst of 10
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := h.rest.Trigger(ctxT(t), []string{"room"}, "e", strconv.Itoa(i), nil); err != nil {
			t.Fatalf("publish %d within the burst: %v", i, err)
		}
	}
	body := []byte(`{"name":"over","channels":["room"],"data":"{}"}`)
	path := "/apps/" + appID + "/events"
	q := auth.SignRequest(key, secret, http.MethodPost, path, url.Values{}, body, time.Now())
	resp, err := http.Post(h.http.URL+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("publish past the limit: %d, Retry-After %q; want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for range 5 {
		expectEvent(t, c, "b", "room")
	}
	for range 5 {
		expectEvent(t, c, "e", "room")
	}
	if got := refused(h, appID, channels.RefusedPublish); got != 1 {
		t.Errorf("publish refusals counted %d, want 1", got)
	}
}

func refused(h *harness, app string, r channels.Refusal) int64 {
	for _, a := range h.srv.AppStats() {
		if a.AppID == app {
			return a.Refused[r.String()]
		}
	}
	return -1
}
