package channels_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// signin signs c in as the user of userData and waits for signin_success.
func (h *harness) signin(c *clients.Conn, userData string) clients.Event {
	h.t.Helper()
	if err := c.Signin(ctxT(h.t), userData, auth.SignUser(key, secret, c.SocketID(), userData)); err != nil {
		h.t.Fatal(err)
	}
	return expectEvent(h.t, c, pusher.EventSigninSuccess, "")
}

func TestSignin(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	userData := `{"id":"42","user_info":{"name":"Ann"}}`
	ev := h.signin(c, userData)
	var d struct {
		UserData string `json:"user_data"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || d.UserData != userData {
		t.Errorf("signin_success data = %s, want user_data echoed as received", ev.Data)
	}
	h.signin(c, userData) // the same user again: fine

	// pusher-js then subscribes to its own #server-to-user- channel; another user's is refused.
	h.subscribe(c, "#server-to-user-42", nil)
	if _, err := c.SubscribeAndWait(ctxT(t), "#server-to-user-43", nil); err == nil {
		t.Error("subscribed to another user's #server-to-user- channel")
	}
	expectEvent(t, c, pusher.EventSubscriptionError, "#server-to-user-43")

	// Presence without channel_data uses the signed-in user.
	ev = h.subscribe(c, "presence-room", clients.SignedAuthorizer(key, secret, nil))
	if !strings.Contains(ev.Data, `"42":{"name":"Ann"}`) {
		t.Errorf("presence payload = %s, want user 42 with its sign-in user_info", ev.Data)
	}

	for name, userData := range map[string]string{
		"different user": `{"id":"7"}`,
		"numeric id":     `{"id":42}`,
		"missing id":     `{"user_info":{}}`,
		"not an object":  `"42"`,
	} {
		_ = c.Signin(ctxT(t), userData, auth.SignUser(key, secret, c.SocketID(), userData))
		if e := expectError(t, c); e.Code == nil || *e.Code != pusher.CodeUnauthorized {
			t.Errorf("%s: error %+v, want code 4009", name, e)
		}
	}
	_ = c.Signin(ctxT(t), userData, key+":"+strings.Repeat("0", 64))
	if e := expectError(t, c); !strings.Contains(e.Message, "Invalid signature") {
		t.Errorf("bad signature: %q", e.Message)
	}
	roundTrip(t, c) // signin failures keep the connection
}

func TestSendToUserAndTerminate(t *testing.T) {
	h := start(t, channels.Config{})
	a1, a2, b := h.dial(nil), h.dial(nil), h.dial(nil)
	h.signin(a1, `{"id":"ann"}`)
	h.signin(a2, `{"id":"ann"}`)
	h.signin(b, `{"id":"bob"}`)
	h.subscribe(a1, "presence-room", clients.SignedAuthorizer(key, secret, nil))
	h.subscribe(b, "presence-room", clients.SignedAuthorizer(key, secret, nil))
	expectEvent(t, a1, pusher.EventMemberAdded, "presence-room")

	// sendToUser: every socket of the user, signed in, whether or not it subscribed the channel itself.
	if _, err := h.rest.Trigger(ctxT(t), []string{"#server-to-user-ann"}, "hello", `"hi ann"`, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*clients.Conn{a1, a2} {
		expectEvent(t, c, "hello", "#server-to-user-ann")
	}
	h.subscribe(b, "only-b", nil)
	h.barrier(b, "only-b")

	// Internal channels stay out of channel lists.
	list, err := h.rest.Channels(ctxT(t), "", "")
	if err != nil || len(list.Channels) != 2 {
		t.Errorf("channels = %+v (%v), want presence-room and only-b only", list, err)
	}
	if st, err := userStatus(h, "ann"); err != nil || !st.Online || st.Connections != 2 {
		t.Errorf("status of ann = %+v (%v), want online on 2 connections", st, err)
	}

	if err := h.rest.TerminateUserConnections(ctxT(t), "ann"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*clients.Conn{a1, a2} {
		if e := expectError(t, c); e.Code == nil || *e.Code != pusher.CodeUnauthorized {
			t.Errorf("terminated socket got %+v, want 4009", e)
		}
		if _, err := c.Next(ctxT(t)); err == nil || c.CloseStatus() != pusher.CodeUnauthorized {
			t.Errorf("terminated socket: %v, close %d, want close 4009", err, c.CloseStatus())
		}
	}
	if ev := expectEvent(t, b, pusher.EventMemberRemoved, "presence-room"); ev.Data != `{"user_id":"ann"}` {
		t.Errorf("member_removed = %s", ev.Data)
	}
	roundTrip(t, b) // bob is untouched
	if st, _ := userStatus(h, "ann"); st.Online {
		t.Errorf("ann still online after terminate: %+v", st)
	}
	if err := h.rest.TerminateUserConnections(ctxT(t), "nobody"); err != nil {
		t.Errorf("terminating an offline user: %v, want 200", err)
	}
}

func userStatus(h *harness, userID string) (pusher.UserStatusResponse, error) {
	var st pusher.UserStatusResponse
	status, body, err := h.rest.Do(ctxT(h.t), "GET", "/apps/"+appID+"/users/"+userID, nil, nil)
	if err == nil && status != 200 {
		h.t.Fatalf("user status: %d %s", status, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	return st, err
}

type watchlistEvents struct {
	Events []struct {
		Name    string   `json:"name"`
		UserIDs []string `json:"user_ids"`
	} `json:"events"`
}

func expectWatchlist(t *testing.T, c *clients.Conn, want map[string][]string) {
	t.Helper()
	ev := expectEvent(t, c, pusher.EventWatchlist, "")
	var w watchlistEvents
	if err := json.Unmarshal([]byte(ev.Data), &w); err != nil {
		t.Fatalf("watchlist data %s: %v", ev.Data, err)
	}
	got := map[string][]string{}
	for _, e := range w.Events {
		got[e.Name] = e.UserIDs
	}
	if len(got) != len(want) {
		t.Fatalf("watchlist = %s, want %v", ev.Data, want)
	}
	for name, ids := range want {
		if strings.Join(got[name], ",") != strings.Join(ids, ",") {
			t.Errorf("watchlist %s = %v, want %v", name, got[name], ids)
		}
	}
}

func TestWatchlist(t *testing.T) {
	h := start(t, channels.Config{WatchlistGrace: 200 * time.Millisecond})
	friend := h.dial(nil)
	h.signin(friend, `{"id":"friend"}`)

	watcher := h.dial(nil)
	h.signin(watcher, `{"id":"me","watchlist":["friend","stranger"]}`)
	expectWatchlist(t, watcher, map[string][]string{"online": {"friend"}, "offline": {"stranger"}})

	// The stranger's first sign-in: online. Its last disconnect: offline, after the grace period.
	stranger := h.dial(nil)
	h.signin(stranger, `{"id":"stranger"}`)
	expectWatchlist(t, watcher, map[string][]string{"online": {"stranger"}})
	_ = stranger.Close()
	expectWatchlist(t, watcher, map[string][]string{"offline": {"stranger"}})

	// A reload inside the grace period is neither offline nor online again.
	_ = friend.Close()
	friend = h.dial(nil)
	h.signin(friend, `{"id":"friend"}`)
	h.subscribe(watcher, "only-watcher", nil)
	h.barrier(watcher, "only-watcher")

	long := make([]string, 101)
	for i := range long {
		long[i] = `"u` + itoa(i) + `"`
	}
	c := h.dial(nil)
	h.signin(c, `{"id":"many","watchlist":[`+strings.Join(long, ",")+`]}`)
	expectEvent(t, c, pusher.EventWatchlist, "")
	if e := expectError(t, c); e.Code == nil || *e.Code != pusher.CodeWatchlistLimit {
		t.Errorf("101 watched ids: %+v, want 4302", e)
	}
	roundTrip(t, c)
}

// gatedUsers blocks the first Count of one user id until released, holding a watcher between
// reading its watchlist's statuses (as a remote Users store does, a round trip per id).
type gatedUsers struct {
	*channels.MemoryUsers
	gatedID string
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedUsers) Count(ctx context.Context, appID, userID string) (int, error) {
	if userID == g.gatedID {
		g.once.Do(func() { close(g.entered); <-g.release })
	}
	return g.MemoryUsers.Count(ctx, appID, userID)
}

// TestWatchlistSnapshotPrecedesLiveEvents: a watched user who signs in while the watcher's statuses
// are being read is announced after the snapshot, which (read before) says offline; the watcher's
// last word on the user is online.
func TestWatchlistSnapshotPrecedesLiveEvents(t *testing.T) {
	g := &gatedUsers{MemoryUsers: channels.NewMemoryUsers(), gatedID: "y", entered: make(chan struct{}), release: make(chan struct{})}
	h := start(t, channels.Config{Users: g})
	watcher := h.dial(nil)
	h.signin(watcher, `{"id":"w","watchlist":["x","y"]}`)
	select { // x was read offline; the watcher now waits on y
	case <-g.entered:
	case <-ctxT(t).Done():
		t.Fatal("the watcher never read y's status")
	}
	x := h.dial(nil)
	h.signin(x, `{"id":"x"}`) // x's online event is fanned out before signin_success
	close(g.release)
	expectWatchlist(t, watcher, map[string][]string{"offline": {"x", "y"}})
	expectWatchlist(t, watcher, map[string][]string{"online": {"x"}})
}

func TestAuthorizationTimeout(t *testing.T) {
	app := defaultApp()
	app.AuthorizationTimeout = 300 * time.Millisecond
	h := start(t, channels.Config{Apps: []pusher.App{app}})
	idle, private, signedIn := h.dial(nil), h.dial(nil), h.dial(nil)
	h.subscribe(idle, "public", nil) // a public subscription does not authorize
	h.subscribe(private, "private-x", signed)
	h.signin(signedIn, `{"id":"u"}`)

	if e := expectError(t, idle); e.Code == nil || *e.Code != pusher.CodeUnauthorized {
		t.Errorf("unauthorized socket got %+v, want 4009", e)
	}
	if _, err := idle.Next(ctxT(t)); err == nil || idle.CloseStatus() != pusher.CodeUnauthorized {
		t.Errorf("unauthorized socket: close %d, want 4009", idle.CloseStatus())
	}
	// The authorized sockets outlive the deadline: the idle one's close came after it.
	roundTrip(t, private)
	roundTrip(t, signedIn)
}

func TestCacheChannels(t *testing.T) {
	h := start(t, channels.Config{})
	a := h.dial(nil)
	h.subscribe(a, "cache-news", nil)
	expectEvent(t, a, pusher.EventCacheMiss, "cache-news")
	status, raw, _ := h.rest.Do(ctxT(t), "GET", "/apps/"+appID+"/channels/cache-news", url.Values{"info": {"cache"}}, nil)
	if status != 200 || strings.TrimSpace(string(raw)) != `{"occupied":true,"cache":null}` {
		t.Errorf("empty cache info = %d %s, want cache: null", status, raw)
	}

	if _, err := h.rest.Trigger(ctxT(t), []string{"cache-news"}, "headline", `"v1"`, nil); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, a, "headline", "cache-news")
	b := h.dial(nil)
	h.subscribe(b, "cache-news", nil)
	if ev := expectEvent(t, b, "headline", "cache-news"); ev.Data != `"v1"` {
		t.Errorf("replayed data = %s", ev.Data)
	}
	ch, err := h.rest.Channel(ctxT(t), "cache-news", "cache")
	if err != nil || ch.Cache == nil || ch.Cache.Info == nil || ch.Cache.Info.Data != `"v1"` || ch.Cache.Info.TTL <= 0 || ch.Cache.Info.TTL > 1800 {
		t.Errorf("cache info = %+v, %v", ch.Cache, err)
	}

	// Client events on a private cache channel are relayed, never cached.
	p1, p2 := h.dial(nil), h.dial(nil)
	h.subscribe(p1, "private-cache-room", signed)
	expectEvent(t, p1, pusher.EventCacheMiss, "private-cache-room")
	h.subscribe(p2, "private-cache-room", signed)
	expectEvent(t, p2, pusher.EventCacheMiss, "private-cache-room")
	_ = p1.Trigger(ctxT(t), "private-cache-room", "client-x", "{}")
	expectEvent(t, p2, "client-x", "private-cache-room")
	p3 := h.dial(nil)
	h.subscribe(p3, "private-cache-room", signed)
	expectEvent(t, p3, pusher.EventCacheMiss, "private-cache-room")

	// Presence cache channels: the presence payload, then the cached event.
	_, _ = h.rest.Trigger(ctxT(t), []string{"presence-cache-lobby"}, "state", "{}", nil)
	m := h.dial(nil)
	if ev := h.subscribe(m, "presence-cache-lobby", presenceAs("ann")); !strings.Contains(ev.Data, "presence") {
		t.Errorf("presence-cache subscription data = %s", ev.Data)
	}
	expectEvent(t, m, "state", "presence-cache-lobby")
}

func TestSubscriptionCount(t *testing.T) {
	app := defaultApp()
	app.SubscriptionCount = true
	h := start(t, channels.Config{Apps: []pusher.App{app}})
	a, b := h.dial(nil), h.dial(nil)
	h.subscribe(a, "room", nil)
	if ev := expectEvent(t, a, pusher.EventSubscriptionCount, "room"); ev.Data != `{"subscription_count":1}` {
		t.Errorf("first count = %s", ev.Data)
	}
	h.subscribe(b, "room", nil)
	for _, c := range []*clients.Conn{a, b} {
		if ev := expectEvent(t, c, pusher.EventSubscriptionCount, "room"); ev.Data != `{"subscription_count":2}` {
			t.Errorf("count after second subscriber = %s", ev.Data)
		}
	}
	_ = b.Unsubscribe(ctxT(t), "room")
	if ev := expectEvent(t, a, pusher.EventSubscriptionCount, "room"); ev.Data != `{"subscription_count":1}` {
		t.Errorf("count after unsubscribe = %s", ev.Data)
	}
	// No counts on presence channels.
	h.subscribe(a, "presence-p", presenceAs("ann"))
	h.subscribe(a, "only-a", nil)
	expectEvent(t, a, pusher.EventSubscriptionCount, "only-a")
	h.barrier(a, "only-a")

	// Off by default.
	plain := start(t, channels.Config{})
	c := plain.dial(nil)
	plain.subscribe(c, "room", nil)
	plain.subscribe(c, "barrier-c", nil)
	plain.barrier(c, "barrier-c")
}
