package redis

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/redis/redistest"
	"github.com/herald-rt/herald/pusher"
)

// These tests run the cluster's stores and scripts against a real redis-server of their own; the
// end-to-end tests with several herald processes are in cmd/herald.

const waitLimit = 10 * time.Second

// fakeLocal is the server a Cluster serves: what it holds is what the test says.
type fakeLocal struct {
	mu      sync.Mutex
	subs    []channels.Subscription
	users   []signin
	conns   map[string]int
	offline chan string // app/user of each Offline call
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{conns: map[string]int{}, offline: make(chan string, 100)}
}

func (l *fakeLocal) Records(subs func(channels.Subscription), users func(appID, userID, socketID string), conns func(string, int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.subs {
		subs(s)
	}
	for _, u := range l.users {
		users(u.app, u.user, u.socket)
	}
	for app, n := range l.conns {
		conns(app, n)
	}
}

func (l *fakeLocal) hold(s ...channels.Subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = s
}

func (l *fakeLocal) Reconnect()                   {}
func (l *fakeLocal) Offline(appID, userID string) { l.offline <- appID + "/" + userID }

// hookLog records what the outbox hands the webhook dispatcher, acknowledging each at once.
type hookLog chan pusher.WebhookEvent

func (h hookLog) Deliver(_ string, e pusher.WebhookEvent, done func()) {
	h <- e
	done()
}

// next waits for the next webhook handed over.
func (h hookLog) next(t *testing.T) pusher.WebhookEvent {
	t.Helper()
	select {
	case e := <-h:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no webhook within the wait limit")
		return pusher.WebhookEvent{}
	}
}

// expect waits for webhooks described as name:channel[:user or =count], in order.
func (h hookLog) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := describe(h.next(t)); got != w {
			t.Fatalf("webhook %q, want %q", got, w)
		}
	}
}

func describe(e pusher.WebhookEvent) string {
	s := e.Name + ":" + e.Channel
	if e.UserID != "" {
		s += ":" + e.UserID
	}
	if e.SubscriptionCount != nil {
		s += "=" + strconv.Itoa(*e.SubscriptionCount)
	}
	return s
}

// testNode is one started Cluster on the test's Redis.
type testNode struct {
	*Cluster
	local *fakeLocal
	hooks hookLog
}

// startNode starts a node on r; with hooks it may hold the webhook lease and deliver the outbox.
// Its reconcile loop waits an hour unless configure says otherwise.
func startNode(t *testing.T, r *redistest.Server, id string, hooks bool, configure ...func(*Config)) *testNode {
	t.Helper()
	cfg := Config{URL: r.URL(), NodeID: id, NodeTimeout: 3 * time.Second, ReconcileInterval: time.Hour}
	for _, f := range configure {
		f(&cfg)
	}
	cl, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{Cluster: cl, local: newFakeLocal()}
	var wh Webhooks
	if hooks {
		n.hooks = make(hookLog, 1000)
		wh = n.hooks
	}
	if err := cl.broker.Start(func(channels.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(n.local, wh, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return c
}

func subscribe(t *testing.T, n *testNode, s channels.Subscription) channels.Joined {
	t.Helper()
	j, err := n.Channels().Subscribe(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func info(t *testing.T, n *testNode, channel string) channels.ChannelInfo {
	t.Helper()
	i, err := n.Channels().Info(ctx(t), "a", channel)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestReconcileRemovesGhosts: a subscription and a sign-in Redis records for a node that no longer
// holds them (their leave failed) are removed after two passes that both found them, as departures:
// member_removed and channel_vacated go out. One pass alone removes nothing.
func TestReconcileRemovesGhosts(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r, "n1", true)
	ghost := channels.Subscription{AppID: "a", Channel: "presence-g", SocketID: "1.1", Member: &pusher.Member{UserID: "u1"}}
	subscribe(t, n, ghost)
	if _, err := n.Users().Connect(ctx(t), "a", "u1", "1.1"); err != nil {
		t.Fatal(err)
	}
	n.hooks.expect(t, "channel_occupied:presence-g", "member_added:presence-g:u1")
	// The node holds nothing: the socket left, but Redis never heard.
	var state reconcileState
	if mended, err := n.reconcile(ctx(t), &state); err != nil || mended != 0 {
		t.Fatalf("first pass mended %d (%v), want 0: a record apart once may be mid-change", mended, err)
	}
	if got := info(t, n, "presence-g"); got.Subscriptions != 1 {
		t.Fatalf("after one pass the channel has %d subscriptions, want 1", got.Subscriptions)
	}
	if mended, err := n.reconcile(ctx(t), &state); err != nil || mended != 2 {
		t.Fatalf("second pass mended %d (%v), want 2 (the subscription and the sign-in)", mended, err)
	}
	if got := info(t, n, "presence-g"); got.Subscriptions != 0 || got.Users != 0 {
		t.Fatalf("after two passes the channel has %d subscriptions and %d users, want none", got.Subscriptions, got.Users)
	}
	if c, _ := n.Users().Count(ctx(t), "a", "u1"); c != 0 {
		t.Fatalf("u1 still has %d signed-in sockets", c)
	}
	select {
	case got := <-n.local.offline:
		if got != "a/u1" {
			t.Fatalf("Offline(%s), want a/u1", got)
		}
	case <-time.After(waitLimit):
		t.Fatal("the ghost sign-in's watchers were not told")
	}
	n.hooks.expect(t, "member_removed:presence-g:u1", "channel_vacated:presence-g")
}

// TestReconcileRecordsLosses: a subscription the node holds that Redis does not record is recorded
// again after two passes, quietly (no webhook: nothing changed for the clients), with its member.
func TestReconcileRecordsLosses(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r, "n1", true)
	held := channels.Subscription{AppID: "a", Channel: "presence-l", SocketID: "2.2", Member: &pusher.Member{UserID: "u2", Info: []byte(`{"n":1}`)}}
	n.local.hold(held)
	var state reconcileState
	for pass := 1; pass <= 2; pass++ {
		if _, err := n.reconcile(ctx(t), &state); err != nil {
			t.Fatal(err)
		}
	}
	if got := info(t, n, "presence-l"); got.Subscriptions != 1 || got.Users != 1 {
		t.Fatalf("after two passes the channel has %d subscriptions and %d users, want 1 and 1", got.Subscriptions, got.Users)
	}
	roster, err := n.Channels().Members(ctx(t), "a", "presence-l")
	if err != nil || len(roster.Members) != 1 || string(roster.Members[0].Info) != `{"n":1}` {
		t.Fatalf("members %+v (%v), want u2 with its info", roster.Members, err)
	}
	// A marker proves no webhook was recorded before it.
	subscribe(t, n, channels.Subscription{AppID: "a", Channel: "marker", SocketID: "3.3"})
	n.hooks.expect(t, "channel_occupied:marker")
}

// TestSubscriptionCountWebhooksAreRecordedOnce: on a counted channel every count goes to the outbox
// once, whichever node changed it; above 100 subscriptions the counts within 5 s become one, with
// the count current at the end of the interval.
func TestSubscriptionCountWebhooksAreRecordedOnce(t *testing.T) {
	r := redistest.Start(t)
	n1 := startNode(t, r, "n1", true)
	n2 := startNode(t, r, "n2", false)
	sub := func(n *testNode, i int) {
		subscribe(t, n, channels.Subscription{AppID: "a", Channel: "counted", SocketID: "9." + strconv.Itoa(i), Counted: true})
	}
	sub(n1, 1)
	sub(n2, 2)
	n1.hooks.expect(t, "channel_occupied:counted", "subscription_count:counted=1", "subscription_count:counted=2")
	subscribe(t, n1, channels.Subscription{AppID: "a", Channel: "uncounted", SocketID: "8.1"})
	n1.hooks.expect(t, "channel_occupied:uncounted")
	for i := 3; i <= 103; i++ {
		sub([]*testNode{n1, n2}[i%2], i)
	}
	for i := 3; i <= 101; i++ { // 101 is the first above the threshold: recorded, and starts an interval
		n1.hooks.expect(t, "subscription_count:counted="+strconv.Itoa(i))
	}
	start := time.Now()
	n1.hooks.expect(t, "subscription_count:counted=103") // 102 and 103 become one, at the interval's end
	if waited := time.Since(start); waited < 3*time.Second {
		t.Fatalf("the throttled count came after %v, not at the end of its 5 s interval", waited)
	}
	if _, err := n2.Channels().Unsubscribe(ctx(t), channels.Subscription{AppID: "a", Channel: "uncounted", SocketID: "8.1"}); err != nil {
		t.Fatal(err)
	}
	n1.hooks.expect(t, "channel_vacated:uncounted") // no count webhook came between
}

// TestCacheMissOnceAcrossNodes: subscribers missing the cache together on two nodes produce one
// cache_miss webhook.
func TestCacheMissOnceAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	n1 := startNode(t, r, "n1", false)
	n2 := startNode(t, r, "n2", false)
	firsts := 0
	for i := range 6 {
		first, err := []*testNode{n1, n2}[i%2].Cache().Miss(ctx(t), "a", "cache-x")
		if err != nil {
			t.Fatal(err)
		}
		if first {
			firsts++
		}
	}
	if firsts != 1 {
		t.Fatalf("%d of 6 misses on two nodes were reported first, want 1", firsts)
	}
	if first, _ := n1.Cache().Miss(ctx(t), "a", "cache-y"); !first {
		t.Fatal("a miss of another channel was not reported")
	}
}

// twoMembers starts two nodes with quick heartbeats and reconcile passes, a member of channel on
// each (u1 on n1, u2 on n2), and waits for their webhooks; it returns n1's subscription.
func twoMembers(t *testing.T, r *redistest.Server, channel string) (n1, n2 *testNode, gone channels.Subscription) {
	t.Helper()
	quick := func(c *Config) { c.NodeTimeout, c.ReconcileInterval = 1200*time.Millisecond, time.Millisecond }
	n1 = startNode(t, r, "n1", true, quick)
	n2 = startNode(t, r, "n2", false, quick)
	gone = channels.Subscription{AppID: "a", Channel: channel, SocketID: "1.1", Member: &pusher.Member{UserID: "u1"}}
	stays := channels.Subscription{AppID: "a", Channel: channel, SocketID: "2.2", Member: &pusher.Member{UserID: "u2"}}
	n1.local.hold(gone)
	n2.local.hold(stays)
	subscribe(t, n1, gone)
	subscribe(t, n2, stays)
	n1.hooks.expect(t, "channel_occupied:"+channel, "member_added:"+channel+":u1", "member_added:"+channel+":u2")
	return n1, n2, gone
}

// TestDeparturesSurviveARedisRestart: a socket leaves while Redis is down, and Redis comes back
// empty. Every node records its sockets again, quietly, and then the node the socket left reports
// its departure against that state: member_removed for its user, but no channel_vacated, since
// another node still holds a member.
func TestDeparturesSurviveARedisRestart(t *testing.T) {
	r := redistest.Start(t)
	n1, n2, gone := twoMembers(t, r, "presence-d")
	r.Kill()
	n1.local.hold()
	if _, err := n1.Channels().Unsubscribe(ctx(t), gone); err == nil {
		t.Fatal("unsubscribing with Redis down succeeded")
	}
	r.Restart(t)

	n1.hooks.expect(t, "member_removed:presence-d:u1")
	if got := info(t, n2, "presence-d"); got.Subscriptions != 1 || got.Users != 1 {
		t.Fatalf("after the departure the channel has %d subscriptions and %d users, want u2's alone", got.Subscriptions, got.Users)
	}
	subscribe(t, n2, channels.Subscription{AppID: "a", Channel: "marker", SocketID: "3.3"})
	n1.hooks.expect(t, "channel_occupied:marker") // nothing else came before it
}

// TestSubscribeAgainAfterAFailedLeave: a socket whose unsubscribe failed and which then subscribed
// again holds the subscription: reporting the remembered departure must not remove it.
func TestSubscribeAgainAfterAFailedLeave(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r, "n1", true)
	s := channels.Subscription{AppID: "a", Channel: "presence-x", SocketID: "1.1", Member: &pusher.Member{UserID: "u1"}}
	subscribe(t, n, s)
	n.hooks.expect(t, "channel_occupied:presence-x", "member_added:presence-x:u1")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Channels().Unsubscribe(cancelled, s); err == nil {
		t.Fatal("unsubscribing with a cancelled context succeeded")
	}
	subscribe(t, n, s)
	n.local.hold(s)
	n.reportDepartures(ctx(t), map[subKey]bool{{"a", "presence-x", "1.1"}: true}, time.Now())
	if got := info(t, n, "presence-x"); got.Subscriptions != 1 || got.Users != 1 {
		t.Fatalf("the subscription held again has %d subscriptions and %d users recorded, want 1 and 1", got.Subscriptions, got.Users)
	}
}

// TestLeaveInARedisThatLostItsData: Redis loses its data (FLUSHALL, as a failover to an empty
// replica) and a socket leaves before the nodes have noticed: its leave finds no record, and the
// departure is reported once every node has recorded its sockets again: member_removed for its
// user, no channel_vacated (another node's member stays), nothing else.
func TestLeaveInARedisThatLostItsData(t *testing.T) {
	r := redistest.Start(t)
	n1, n2, gone := twoMembers(t, r, "presence-f")
	if err := n1.client.Do(ctx(t), n1.client.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	n1.local.hold()
	if _, err := n1.Channels().Unsubscribe(ctx(t), gone); err != nil {
		t.Fatal(err)
	}
	n1.hooks.expect(t, "member_removed:presence-f:u1")
	subscribe(t, n2, channels.Subscription{AppID: "a", Channel: "marker", SocketID: "3.3"})
	n1.hooks.expect(t, "channel_occupied:marker")
}

// TestReleaseNeverGoesBelowZero: a node evicted while alive closes its connections afterwards; their
// releases find no count to uncount, and the app's max_connections still holds for the cluster.
func TestReleaseNeverGoesBelowZero(t *testing.T) {
	r := redistest.Start(t)
	n1 := startNode(t, r, "n1", false)
	n2 := startNode(t, r, "n2", false)
	for range 3 {
		if ok, err := n1.Quota().Admit(ctx(t), "a", 3); !ok || err != nil {
			t.Fatalf("admit: %v %v", ok, err)
		}
	}
	if _, err := n2.evict(ctx(t), "n1", anyToken); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		n1.Quota().Release(ctx(t), "a")
	}
	admitted := 0
	for range 10 {
		if ok, _ := n2.Quota().Admit(ctx(t), "a", 3); ok {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("admitted %d of 10 with max_connections 3 after the evicted node's releases", admitted)
	}
}

// TestEvictStopsAtANewRegistration: a reaper that found a registration dead removes nothing once
// the node has registered again (it was only paused): neither its registration nor its records.
func TestEvictStopsAtANewRegistration(t *testing.T) {
	r := redistest.Start(t)
	n1 := startNode(t, r, "n1", false)
	n2 := startNode(t, r, "n2", false)
	subscribe(t, n1, channels.Subscription{AppID: "a", Channel: "room", SocketID: "1.1"})
	if n, err := n2.evict(ctx(t), "n1", "a-token-from-before"); err != nil || n != 0 {
		t.Fatalf("evicting an old registration removed %d records (%v), want none", n, err)
	}
	if got := info(t, n1, "room"); got.Subscriptions != 1 {
		t.Fatalf("n1's subscription is gone: %d", got.Subscriptions)
	}
	if registered, err := n1.registered(ctx(t)); err != nil || !registered {
		t.Fatalf("n1's registration is gone (%v)", err)
	}
	if n, err := n2.evict(ctx(t), "n1", n1.reg.Load().token); err != nil || n != 1 {
		t.Fatalf("evicting the current registration removed %d records (%v), want 1", n, err)
	}
}

// heldHooks keeps what the outbox hands over without finishing it, until the test releases it.
type heldHooks struct {
	mu       sync.Mutex
	got      []string
	dones    []func()
	released bool
}

func (h *heldHooks) Deliver(_ string, e pusher.WebhookEvent, done func()) {
	h.mu.Lock()
	h.got = append(h.got, describe(e))
	if !h.released {
		h.dones = append(h.dones, done)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	done()
}

func (h *heldHooks) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// release acknowledges everything handed over, and from then on each event at once.
func (h *heldHooks) release() {
	h.mu.Lock()
	dones := h.dones
	h.dones, h.released = nil, true
	h.mu.Unlock()
	for _, done := range dones {
		done()
	}
}

// TestLeaveKeepsTheLeaseUntilDelivered: a node that leaves while its dispatcher still holds events
// keeps the webhook lease until they are delivered, so the next holder neither sends them again
// nor sends later events first: each event goes out once, in order, from one node at a time.
func TestLeaveKeepsTheLeaseUntilDelivered(t *testing.T) {
	r := redistest.Start(t)
	cl, err := Open(Config{URL: r.URL(), NodeID: "n1", NodeTimeout: time.Second, ReconcileInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	held := &heldHooks{}
	if err := cl.broker.Start(func(channels.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(newFakeLocal(), held, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	n1 := &testNode{Cluster: cl, local: newFakeLocal()}
	subscribe(t, n1, channels.Subscription{AppID: "a", Channel: "first", SocketID: "1.1"})
	for deadline := time.Now().Add(waitLimit); held.count() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("n1 never read the outbox")
		}
		time.Sleep(10 * time.Millisecond) // polling what the outbox handed over, with a deadline
	}
	n2 := startNode(t, r, "n2", true, func(c *Config) { c.NodeTimeout = time.Second })
	if err := cl.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	subscribe(t, n2, channels.Subscription{AppID: "a", Channel: "later", SocketID: "2.2"})
	if holder, err := cl.client.Do(ctx(t), cl.client.B().Get().Key("herald:lease").Build()).ToString(); err != nil || holder != "n1" {
		t.Fatalf("the lease is held by %q (%v) while n1 still has an undelivered event, want n1", holder, err)
	}
	held.release()
	subscribe(t, n2, channels.Subscription{AppID: "a", Channel: "marker", SocketID: "3.3"})
	var fromN2 []string
	for e := ""; e != "channel_occupied:marker"; {
		e = describe(n2.hooks.next(t))
		fromN2 = append(fromN2, e)
	}
	held.mu.Lock()
	all := append(append([]string{}, held.got...), fromN2...)
	held.mu.Unlock()
	want := []string{"channel_occupied:first", "channel_vacated:first", "channel_occupied:later", "channel_occupied:marker"}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("n1 delivered %v, then n2 %v; want %v between them, once each, in order", held.got, fromN2, want)
	}
}
