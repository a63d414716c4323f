package channels_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

const (
	appID  = "1"
	key    = "e2e-key"
	secret = "e2e-secret"
)

// harness is a real server on a real listener, reached only through the Go SDK.
type harness struct {
	t    *testing.T
	srv  *channels.Server
	http *httptest.Server
	rest *clients.REST
}

func defaultApp() pusher.App {
	return pusher.App{ID: appID, Key: key, Secret: secret, Enabled: true, ClientEvents: true}
}

func start(t *testing.T, cfg channels.Config) *harness {
	t.Helper()
	if cfg.Apps == nil {
		cfg.Apps = []pusher.App{defaultApp()}
	}
	srv, err := channels.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return &harness{t: t, srv: srv, http: hs, rest: clients.NewREST(clients.RESTConfig{BaseURL: hs.URL, AppID: appID, Key: key, Secret: secret})}
}

func (h *harness) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(h.http.URL, "http") + path
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects to the default app and closes the connection when the test ends.
func (h *harness) dial(opts *clients.DialOptions) *clients.Conn {
	h.t.Helper()
	c, err := clients.Dial(ctxT(h.t), h.wsURL("/app/"+key), opts)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

var signed = clients.SignedAuthorizer(key, secret, func(channel string) string {
	return `{"user_id":"u-` + channel + `"}`
})

func presenceAs(userID string) clients.Authorizer {
	return clients.SignedAuthorizer(key, secret, func(string) string {
		return `{"user_id":"` + userID + `","user_info":{"name":"` + userID + `"}}`
	})
}

func (h *harness) subscribe(c *clients.Conn, channel string, authorize clients.Authorizer) clients.Event {
	h.t.Helper()
	ev, err := c.SubscribeAndWait(ctxT(h.t), channel, authorize)
	if err != nil {
		h.t.Fatalf("subscribe %s: %v", channel, err)
	}
	return ev
}

// expectEvent waits for the next event and checks its name (and channel when given).
func expectEvent(t *testing.T, c *clients.Conn, event, channel string) clients.Event {
	t.Helper()
	ev, err := c.Next(ctxT(t))
	if err != nil {
		t.Fatalf("waiting for %s: %v", event, err)
	}
	if ev.Event != event || (channel != "" && ev.Channel != channel) {
		t.Fatalf("got %s on %q (data %s), want %s on %q", ev.Event, ev.Channel, ev.Data, event, channel)
	}
	return ev
}

// expectError waits for the next event, which must be pusher:error; it returns the decoded error.
func expectError(t *testing.T, c *clients.Conn) pusherError {
	t.Helper()
	ev := expectEvent(t, c, pusher.EventError, "")
	return decodeError(t, ev)
}

// barrier publishes a marker only c is subscribed for and waits for it: every event the server sent
// c before the marker has then been read, so "nothing else arrived" needs no sleep.
func (h *harness) barrier(c *clients.Conn, channel string) {
	h.t.Helper()
	if _, err := h.rest.Trigger(ctxT(h.t), []string{channel}, "barrier", "{}", nil); err != nil {
		h.t.Fatal(err)
	}
	ev, err := c.Next(ctxT(h.t))
	if err != nil || ev.Event != "barrier" {
		h.t.Fatalf("got %+v (%v) before the barrier, want nothing", ev, err)
	}
}
