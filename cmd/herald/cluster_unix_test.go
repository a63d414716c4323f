//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels/redis/redistest"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// The cluster tests run real herald processes (children of this test binary, see startChild) on a
// real redis-server of their own (redistest).

// testCluster is n herald nodes on one Redis, sharing one config with two apps whose webhooks go to
// one receiver.
type testCluster struct {
	redis    *redistest.Server
	receiver *floodReceiver
	config   string
	timeout  int // --cluster-node-timeout, seconds
	nodes    []*clusterNode
	failing  atomic.Bool  // the receiver answers 503 while set
	refused  atomic.Int64 // requests it answered so
}

// clusterNode is one herald process of a testCluster.
type clusterNode struct {
	*child
	id     string
	holder atomic.Bool // it logged that it took the webhook lease
}

const (
	clusterAppID  = "a"
	clusterKey    = "ka"
	clusterSecret = "sa"
)

// startCluster starts Redis and n nodes, and waits until every node answers /ready.
func startCluster(t *testing.T, n, nodeTimeout int) *testCluster {
	t.Helper()
	c := &testCluster{
		redis:    redistest.Start(t),
		receiver: &floodReceiver{events: map[string][]pusher.WebhookEvent{}, seen: map[string]time.Time{}},
		timeout:  nodeTimeout,
	}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.failing.Load() {
			c.refused.Add(1)
			http.Error(w, "receiver down", http.StatusServiceUnavailable)
			return
		}
		c.receiver.ServeHTTP(w, r)
	}))
	t.Cleanup(hooks.Close)
	c.config = writeConfig(t, `{"webhook_delay": 1, "watchlist_grace": 1, "apps": [
		{"id": "`+clusterAppID+`", "key": "`+clusterKey+`", "secret": "`+clusterSecret+`", "client_events": true,
		 "subscription_count": true, "webhooks": [{"url": "`+hooks.URL+`"}]},
		{"id": "q", "key": "kq", "secret": "sq", "max_connections": 3}]}`)
	for i := range n {
		c.nodes = append(c.nodes, c.startNode(t, fmt.Sprintf("n%d", i+1)))
	}
	for _, node := range c.nodes {
		c.waitReady(t, node, http.StatusOK)
	}
	return c
}

func (c *testCluster) startNode(t *testing.T, id string) *clusterNode {
	t.Helper()
	ch := startChild(t, 4096, "--addr", "127.0.0.1:0", "--config", c.config, "--redis-url", c.redis.URL(),
		"--node-id", id, "--cluster-node-timeout", strconv.Itoa(c.timeout))
	node := &clusterNode{child: ch, id: id}
	go func() { // reads the log so the child never blocks on a full pipe
		for l := range ch.lines {
			if strings.Contains(l, "this node delivers the cluster's webhooks") {
				node.holder.Store(true)
			}
		}
	}()
	return node
}

// waitReady polls node's /ready until it answers want, for at most 15 s.
func (c *testCluster) waitReady(t *testing.T, node *clusterNode, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := 0
		if resp, err := http.Get("http://" + node.addr + "/ready"); err == nil {
			got = resp.StatusCode
			resp.Body.Close()
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: /ready answered %d for 15 s, want %d", node.id, got, want)
		}
		time.Sleep(50 * time.Millisecond) // polling a health endpoint with a deadline
	}
}

func (n *clusterNode) rest() *clients.REST {
	return clients.NewREST(clients.RESTConfig{BaseURL: "http://" + n.addr, AppID: clusterAppID, Key: clusterKey, Secret: clusterSecret})
}

func (n *clusterNode) dial(ctx context.Context, t *testing.T) *clients.Conn {
	t.Helper()
	conn, err := clients.Dial(ctx, "ws://"+n.addr+"/app/"+clusterKey, nil)
	if err != nil {
		t.Fatalf("node %s: %v", n.id, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// kill ends the node with SIGKILL, as a crash does.
func (n *clusterNode) kill(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Kill()
	n.waitExit(t)
}

// terminate sends SIGTERM and waits for the node to exit.
func (n *clusterNode) terminate(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n.waitExit(t)
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("node %s exited %d after SIGTERM", n.id, code)
	}
}

func (n *clusterNode) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-n.child.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s did not exit", n.id)
	}
}

// presenceAuth signs presence subscriptions as user.
func presenceAuth(user string) clients.Authorizer {
	return clients.SignedAuthorizer(clusterKey, clusterSecret, func(string) string {
		return `{"user_id":"` + user + `","user_info":{"name":"` + user + `"}}`
	})
}

var clusterAuth = clients.SignedAuthorizer(clusterKey, clusterSecret, nil)

// join subscribes conn and fails the test unless the subscription succeeds.
func join(ctx context.Context, t *testing.T, conn *clients.Conn, channel string, authorize clients.Authorizer) clients.Event {
	t.Helper()
	ev, err := conn.SubscribeAndWait(ctx, channel, authorize)
	if err != nil {
		t.Fatalf("subscribe %s: %v", channel, err)
	}
	return ev
}

// nextOn returns the next event on channel, skipping other channels' events and subscription counts.
func nextOn(ctx context.Context, t *testing.T, conn *clients.Conn, channel string) clients.Event {
	t.Helper()
	ev, err := conn.WaitFor(ctx, func(e clients.Event) bool {
		return e.Channel == channel && e.Event != pusher.EventSubscriptionCount
	})
	if err != nil {
		t.Fatalf("waiting for an event on %s: %v", channel, err)
	}
	return ev
}

// fence waits until every webhook the cluster recorded before this call has reached the receiver:
// it occupies a fresh channel and waits for that channel's channel_occupied, which the outbox
// delivers after everything recorded before it (one app's events go out in order).
func (c *testCluster) fence(ctx context.Context, t *testing.T, node *clusterNode, name string) {
	t.Helper()
	conn := node.dial(ctx, t)
	join(ctx, t, conn, name, nil)
	c.waitWebhooks(t, name, []string{pusher.WebhookChannelOccupied})
	_ = conn.Close()
}

// lifecycle returns channel's occupancy and member webhooks, in arrival order.
func (c *testCluster) lifecycle(channel string) []string {
	var out []string
	for _, name := range c.receiver.lifecycle(clusterKey, channel) {
		if name != pusher.WebhookSubscriptionCount {
			out = append(out, name)
		}
	}
	return out
}

// waitWebhooks waits up to 20 s until channel's occupancy and member webhooks are exactly want, in
// order, and fails at once when more or different ones arrive.
func (c *testCluster) waitWebhooks(t *testing.T, channel string, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := c.lifecycle(channel)
		if len(got) > len(want) || !equalPrefix(got, want) {
			t.Fatalf("%s webhooks %v, want %v", channel, got, want)
		}
		if len(got) == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s webhooks %v after 20 s, want %v", channel, got, want)
		}
		time.Sleep(20 * time.Millisecond) // polling the receiver with a deadline
	}
}

func equalPrefix(got, want []string) bool {
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			return false
		}
	}
	return true
}

// webhookCounts counts channel's webhooks by name, and by name and user for member events.
func (c *testCluster) webhookCounts(channel string) map[string]int {
	c.receiver.mu.Lock()
	defer c.receiver.mu.Unlock()
	n := map[string]int{}
	for _, e := range c.receiver.events[clusterKey] {
		if e.Channel == channel {
			n[e.Name]++
			if e.UserID != "" {
				n[e.Name+" "+e.UserID]++
			}
		}
	}
	return n
}

// TestClusterDelivery: three nodes on one Redis. A REST publish through any node reaches every
// subscriber on every node once and in order, socket_id exclusion holds across nodes, client events
// cross nodes without echo, sendToUser and terminate_connections reach a user's sockets on every
// node, and the last cache-channel event is shared.
func TestClusterDelivery(t *testing.T) {
	c := startCluster(t, 3, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	subs := make([]*clients.Conn, 3)
	for i, node := range c.nodes {
		subs[i] = node.dial(ctx, t)
		join(ctx, t, subs[i], "private-room", clusterAuth)
	}
	// subscription_count carries the cluster's total to every node's subscribers.
	for i, conn := range subs {
		if _, err := conn.WaitFor(ctx, func(e clients.Event) bool {
			return e.Event == pusher.EventSubscriptionCount && e.Data == `{"subscription_count":3}`
		}); err != nil {
			t.Fatalf("the subscriber on n%d never saw subscription_count 3: %v", i+1, err)
		}
	}
	const n = 50
	for i := range n {
		if _, err := c.nodes[i%3].rest().Trigger(ctx, []string{"private-room"}, "seq", strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for s, conn := range subs {
		for i := range n {
			ev := nextOn(ctx, t, conn, "private-room")
			if ev.Event != "seq" || ev.Data != strconv.Itoa(i) {
				t.Fatalf("subscriber on n%d: event %d is %s %q, want seq %q", s+1, i, ev.Event, ev.Data, strconv.Itoa(i))
			}
		}
	}

	// socket_id exclusion: published through n3 excluding the subscriber on n1.
	opts := &clients.TriggerOptions{SocketID: subs[0].SocketID()}
	if _, err := c.nodes[2].rest().Trigger(ctx, []string{"private-room"}, "not-for-n1", "{}", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[2].rest().Trigger(ctx, []string{"private-room"}, "marker", "{}", nil); err != nil {
		t.Fatal(err)
	}
	if ev := nextOn(ctx, t, subs[0], "private-room"); ev.Event != "marker" {
		t.Errorf("the excluded socket on n1 got %s before the marker", ev.Event)
	}
	for _, conn := range subs[1:] {
		if ev := nextOn(ctx, t, conn, "private-room"); ev.Event != "not-for-n1" {
			t.Errorf("got %s, want not-for-n1", ev.Event)
		}
		expectEvent(ctx, t, conn, "private-room", "marker")
	}

	// A client event from n2 reaches n1 and n3, not its sender.
	if err := subs[1].Trigger(ctx, "private-room", "client-hello", map[string]string{"from": "n2"}); err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*clients.Conn{subs[0], subs[2]} {
		if ev := nextOn(ctx, t, conn, "private-room"); ev.Event != "client-hello" {
			t.Errorf("got %s, want client-hello", ev.Event)
		}
	}
	if _, err := c.nodes[0].rest().Trigger(ctx, []string{"private-room"}, "marker", "{}", nil); err != nil {
		t.Fatal(err)
	}
	if ev := nextOn(ctx, t, subs[1], "private-room"); ev.Event != "marker" {
		t.Errorf("the client event's sender got %s back", ev.Event)
	}

	// sendToUser and terminate_connections: one user signed in on n1 and on n2, reached through n3.
	var signedIn []*clients.Conn
	for _, node := range c.nodes[:2] {
		conn := node.dial(ctx, t)
		userData := `{"id":"u1"}`
		if err := conn.Signin(ctx, userData, signUser(conn.SocketID(), userData)); err != nil {
			t.Fatal(err)
		}
		expectEvent(ctx, t, conn, "", pusher.EventSigninSuccess)
		signedIn = append(signedIn, conn)
	}
	if _, err := c.nodes[2].rest().Trigger(ctx, []string{"#server-to-user-u1"}, "direct", `"hi"`, nil); err != nil {
		t.Fatal(err)
	}
	for _, conn := range signedIn {
		expectEvent(ctx, t, conn, "#server-to-user-u1", "direct")
	}
	if err := c.nodes[2].rest().TerminateUserConnections(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	for i, conn := range signedIn {
		if _, err := conn.WaitFor(ctx, func(clients.Event) bool { return false }); err == nil || ctx.Err() != nil {
			t.Fatalf("u1's socket on n%d: %v, want it closed", i+1, err)
		}
		if got := conn.CloseStatus(); got != pusher.CodeUnauthorized {
			t.Errorf("u1's socket on n%d closed with %d, want %d", i+1, got, pusher.CodeUnauthorized)
		}
	}

	// The last event of a cache channel, published through n1, is what a subscriber on n3 gets first.
	if _, err := c.nodes[0].rest().Trigger(ctx, []string{"cache-news"}, "headline", `"latest"`, nil); err != nil {
		t.Fatal(err)
	}
	late := c.nodes[2].dial(ctx, t)
	join(ctx, t, late, "cache-news", nil)
	if ev := nextOn(ctx, t, late, "cache-news"); ev.Event != "headline" || ev.Data != `"latest"` {
		t.Errorf("a late subscriber on n3 got %s %q, want the cached headline", ev.Event, ev.Data)
	}
	ch, err := c.nodes[1].rest().Channel(ctx, "cache-news", "cache")
	if err != nil || ch.Cache == nil {
		t.Errorf("GET /channels/cache-news?info=cache on n2 = %+v, %v; want the cached event", ch, err)
	}
}

// signUser signs a pusher:signin for socketID.
func signUser(socketID, userData string) string {
	return auth.SignUser(clusterKey, clusterSecret, socketID, userData)
}

// TestClusterPresenceIsExact: 30 users join one presence channel at once, ten on each of three nodes.
// Every subscriber on every node sees each of them added once, the REST views of every node (none of
// which holds all the sockets) list all 30, and the receiver gets one channel_occupied and exactly 30
// member_added; when all leave, exactly 30 member_removed and one channel_vacated. A user who leaves
// on one node and joins again on another within the webhook delay causes no webhook at all.
func TestClusterPresenceIsExact(t *testing.T) {
	c := startCluster(t, 3, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const channel, users = "presence-lobby", 30

	watchers := make([]*clients.Conn, 3)
	for i, node := range c.nodes {
		watchers[i] = node.dial(ctx, t)
		join(ctx, t, watchers[i], channel, presenceAuth(fmt.Sprintf("watcher%d", i)))
	}
	for i, w := range watchers { // each watcher sees the watchers after it join
		for range 2 - i {
			expectEvent(ctx, t, w, channel, pusher.EventMemberAdded)
		}
	}

	members := make([]*clients.Conn, users)
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for i := range users {
		members[i] = c.nodes[i%3].dial(ctx, t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := members[i].SubscribeAndWait(ctx, channel, presenceAuth(fmt.Sprintf("user%d", i))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, w := range watchers {
		seen := map[string]int{}
		for range users {
			seen[expectEvent(ctx, t, w, channel, pusher.EventMemberAdded).Data]++
		}
		if len(seen) != users {
			t.Errorf("the watcher on n%d saw %d distinct members added, want %d", i+1, len(seen), users)
		}
	}
	for _, node := range c.nodes {
		got, err := node.rest().Users(ctx, channel)
		if err != nil || len(got.Users) != users+3 {
			t.Errorf("node %s lists %d users (%v), want %d", node.id, len(got.Users), err, users+3)
		}
		info, err := node.rest().Channel(ctx, channel, "user_count,subscription_count")
		if err != nil || !info.Occupied || info.UserCount == nil || *info.UserCount != users+3 {
			t.Errorf("node %s: GET /channels/%s = %+v, %v; want occupied with user_count %d", node.id, channel, info, err, users+3)
		}
	}

	// Leave on n1 and join again on n2 within the webhook delay: the member stays, nothing is sent.
	_ = members[0].Close()
	again := c.nodes[1].dial(ctx, t)
	join(ctx, t, again, channel, presenceAuth("user0"))

	for _, m := range members[1:] {
		_ = m.Close()
	}
	_ = again.Close()
	for _, w := range watchers {
		_ = w.Close()
	}
	c.fence(ctx, t, c.nodes[2], "fence-after-leaving")
	deadline := time.Now().Add(20 * time.Second)
	for c.webhookCounts(channel)[pusher.WebhookChannelVacated] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling the receiver with a deadline
	}
	c.fence(ctx, t, c.nodes[0], "fence-after-vacated")
	got := c.webhookCounts(channel)
	for name, want := range map[string]int{
		pusher.WebhookChannelOccupied: 1, pusher.WebhookMemberAdded: users + 3,
		pusher.WebhookMemberRemoved: users + 3, pusher.WebhookChannelVacated: 1,
	} {
		if got[name] != want {
			t.Errorf("%d %s webhooks, want %d", got[name], name, want)
		}
	}
	for i := range users {
		for _, name := range []string{pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved} {
			if n := got[name+" user"+strconv.Itoa(i)]; n != 1 {
				t.Errorf("user%d: %d %s webhooks, want 1", i, n, name)
			}
		}
	}
	if got, err := c.nodes[1].rest().Channels(ctx, "presence-", "user_count"); err != nil || len(got.Channels) != 0 {
		t.Errorf("GET /channels after everyone left = %+v, %v; want none", got, err)
	}
}

// TestClusterNodeCrash: a node killed with SIGKILL is evicted by the survivors within the node
// timeout. Subscribers elsewhere see its member removed, REST no longer lists it, and the webhooks go
// out once, although two survivors watch for dead nodes.
func TestClusterNodeCrash(t *testing.T) {
	const nodeTimeout = 2
	c := startCluster(t, 3, nodeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const channel = "presence-crash"
	// The node killed does not hold the webhook lease: a holder killed between sending a webhook and
	// acknowledging it has it sent again (at least once; TestClusterWebhooksOutliveTheirNode).
	victim, survivor := c.nodes[2], c.nodes[1]
	if victim.holder.Load() {
		victim, survivor = survivor, victim
	}
	watcher := c.nodes[0].dial(ctx, t)
	join(ctx, t, watcher, channel, presenceAuth("stays"))
	doomed := victim.dial(ctx, t)
	join(ctx, t, doomed, channel, presenceAuth("doomed"))
	expectEvent(ctx, t, watcher, channel, pusher.EventMemberAdded)
	alone := victim.dial(ctx, t)
	join(ctx, t, alone, "only-on-n3", nil)
	c.waitWebhooks(t, "only-on-n3", []string{pusher.WebhookChannelOccupied})

	killed := time.Now()
	victim.kill(t)
	ev := expectEvent(ctx, t, watcher, channel, pusher.EventMemberRemoved)
	t.Logf("member_removed reached n1 %v after "+victim.id+" was killed (node timeout %d s)", time.Since(killed).Round(time.Millisecond), nodeTimeout)
	if ev.Data != `{"user_id":"doomed"}` {
		t.Errorf("member_removed %s, want doomed", ev.Data)
	}
	users, err := survivor.rest().Users(ctx, channel)
	if err != nil || len(users.Users) != 1 || users.Users[0].ID != "stays" {
		t.Errorf("%s lists %+v, %v after the crash; want only stays", survivor.id, users, err)
	}
	c.waitWebhooks(t, "only-on-n3", []string{pusher.WebhookChannelOccupied, pusher.WebhookChannelVacated})
	c.fence(ctx, t, survivor, "fence-after-crash")
	got := c.webhookCounts(channel)
	if got[pusher.WebhookMemberRemoved+" doomed"] != 1 || got[pusher.WebhookChannelVacated] != 0 {
		t.Errorf("webhooks after the crash: %v; want one member_removed for doomed and the channel still occupied", got)
	}
}

// TestClusterSigtermLeavesAtOnce: a node stopped with SIGTERM closes its clients with 4200 and
// removes its members cluster-wide at once, long before the node timeout would.
func TestClusterSigtermLeavesAtOnce(t *testing.T) {
	c := startCluster(t, 2, 60)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // well under the node timeout
	defer cancel()
	const channel = "presence-deploy"
	watcher := c.nodes[0].dial(ctx, t)
	join(ctx, t, watcher, channel, presenceAuth("stays"))
	leaving := c.nodes[1].dial(ctx, t)
	join(ctx, t, leaving, channel, presenceAuth("moves"))
	expectEvent(ctx, t, watcher, channel, pusher.EventMemberAdded)

	c.nodes[1].terminate(t)
	if _, err := leaving.WaitFor(ctx, func(clients.Event) bool { return false }); err == nil || ctx.Err() != nil {
		t.Fatalf("the client of the stopped node: %v, want it closed", err)
	}
	if got := leaving.CloseStatus(); got != pusher.CodeReconnect {
		t.Errorf("the client of the stopped node was closed with %d, want %d", got, pusher.CodeReconnect)
	}
	ev := expectEvent(ctx, t, watcher, channel, pusher.EventMemberRemoved)
	if ev.Data != `{"user_id":"moves"}` {
		t.Errorf("member_removed %s, want moves", ev.Data)
	}
	users, err := c.nodes[0].rest().Users(ctx, channel)
	if err != nil || len(users.Users) != 1 {
		t.Errorf("n1 lists %+v, %v; want only stays", users, err)
	}
}

// TestClusterSurvivesRedisRestart: Redis is killed and started again empty. While it is down, REST
// publishes get 503 and /ready does too; once it is back, each node re-records its own sockets
// quietly (no member or occupancy events), the REST views are whole again, and delivery resumes
// without any client subscribing again.
func TestClusterSurvivesRedisRestart(t *testing.T) {
	c := startCluster(t, 2, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const channel = "presence-durable"
	a := c.nodes[0].dial(ctx, t)
	join(ctx, t, a, channel, presenceAuth("alice"))
	b := c.nodes[1].dial(ctx, t)
	join(ctx, t, b, channel, presenceAuth("bob"))
	expectEvent(ctx, t, a, channel, pusher.EventMemberAdded)
	c.waitWebhooks(t, channel, []string{pusher.WebhookChannelOccupied, pusher.WebhookMemberAdded, pusher.WebhookMemberAdded})

	c.redis.Kill()
	for _, node := range c.nodes {
		c.waitReady(t, node, http.StatusServiceUnavailable)
	}
	_, err := c.nodes[0].rest().Trigger(ctx, []string{channel}, "lost", "{}", nil)
	var se *clients.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Errorf("a publish while Redis is down: %v, want 503", err)
	}

	c.redis.Restart(t)
	for _, node := range c.nodes {
		c.waitReady(t, node, http.StatusOK)
	}
	// Re-recording runs at the next heartbeat; the REST view is whole once it has.
	deadline := time.Now().Add(20 * time.Second)
	for {
		users, err := c.nodes[0].rest().Users(ctx, channel)
		if err == nil && len(users.Users) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart n1 lists %+v, %v; want alice and bob", users, err)
		}
		time.Sleep(50 * time.Millisecond) // polling REST with a deadline
	}
	if _, err := c.nodes[0].rest().Trigger(ctx, []string{channel}, "after-restart", "{}", nil); err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*clients.Conn{a, b} {
		if ev := nextOn(ctx, t, conn, channel); ev.Event != "after-restart" {
			t.Errorf("first event after the restart: %s, want after-restart (no member events)", ev.Event)
		}
	}
	c.fence(ctx, t, c.nodes[1], "fence-after-restart")
	if got := c.lifecycle(channel); len(got) != 3 {
		t.Errorf("webhooks %v; the restart added some", got)
	}
}

// TestClusterPausedNodeFindsOut: a node paused (SIGSTOP) for longer than the node timeout is evicted
// by the others, who see its member leave. When it runs again it finds it was declared dead and
// closes its clients with 4200, so they join again elsewhere; it leaves no ghost member behind.
func TestClusterPausedNodeFindsOut(t *testing.T) {
	const nodeTimeout = 2
	c := startCluster(t, 2, nodeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const channel = "presence-paused"
	watcher := c.nodes[0].dial(ctx, t)
	join(ctx, t, watcher, channel, presenceAuth("stays"))
	paused := c.nodes[1].dial(ctx, t)
	join(ctx, t, paused, channel, presenceAuth("sleeper"))
	expectEvent(ctx, t, watcher, channel, pusher.EventMemberAdded)

	if err := c.nodes[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	expectEvent(ctx, t, watcher, channel, pusher.EventMemberRemoved)
	c.waitWebhooks(t, channel, []string{pusher.WebhookChannelOccupied, pusher.WebhookMemberAdded,
		pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved}) // the removal is not undone by the rejoin below
	if err := c.nodes[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := paused.WaitFor(ctx, func(clients.Event) bool { return false }); err == nil || ctx.Err() != nil {
		t.Fatalf("the paused node's client: %v, want it closed", err)
	}
	if got := paused.CloseStatus(); got != pusher.CodeReconnect {
		t.Errorf("the paused node's client was closed with %d, want %d", got, pusher.CodeReconnect)
	}
	c.waitReady(t, c.nodes[1], http.StatusOK)
	back := c.nodes[1].dial(ctx, t) // the client joins again, here on the same node
	join(ctx, t, back, channel, presenceAuth("sleeper"))
	expectEvent(ctx, t, watcher, channel, pusher.EventMemberAdded)
	for _, node := range c.nodes {
		users, err := node.rest().Users(ctx, channel)
		if err != nil || len(users.Users) != 2 {
			t.Errorf("node %s lists %+v, %v; want stays and sleeper once each", node.id, users, err)
		}
	}
	c.fence(ctx, t, c.nodes[0], "fence-after-pause")
	got := c.webhookCounts(channel)
	if got[pusher.WebhookMemberRemoved+" sleeper"] != 1 || got[pusher.WebhookMemberAdded+" sleeper"] != 2 {
		t.Errorf("webhooks %v; want sleeper removed once and added twice", got)
	}
}

// TestClusterUsersAndQuota: a watchlist sees users come online and go offline on other nodes, the
// online query of any node counts a user's sockets on all of them, and an app's max_connections holds
// for the cluster, not per node.
func TestClusterUsersAndQuota(t *testing.T) {
	c := startCluster(t, 3, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	signin := func(conn *clients.Conn, userData string) {
		t.Helper()
		if err := conn.Signin(ctx, userData, signUser(conn.SocketID(), userData)); err != nil {
			t.Fatal(err)
		}
		expectEvent(ctx, t, conn, "", pusher.EventSigninSuccess)
	}
	watchlist := func(conn *clients.Conn) string {
		t.Helper()
		ev := expectEvent(ctx, t, conn, "", pusher.EventWatchlist)
		var w struct {
			Events []struct {
				Name    string   `json:"name"`
				UserIDs []string `json:"user_ids"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &w); err != nil || len(w.Events) != 1 || len(w.Events[0].UserIDs) != 1 {
			t.Fatalf("watchlist event %s: %v", ev.Data, err)
		}
		return w.Events[0].Name + " " + w.Events[0].UserIDs[0]
	}
	watcher := c.nodes[0].dial(ctx, t)
	signin(watcher, `{"id":"me","watchlist":["friend"]}`)
	if got := watchlist(watcher); got != "offline friend" {
		t.Fatalf("first watchlist event %q, want offline friend", got)
	}
	var friend []*clients.Conn
	for _, node := range c.nodes[1:] {
		conn := node.dial(ctx, t)
		signin(conn, `{"id":"friend"}`)
		friend = append(friend, conn)
	}
	if got := watchlist(watcher); got != "online friend" {
		t.Fatalf("watchlist event %q, want online friend", got)
	}
	var status struct {
		Online      bool `json:"online"`
		Connections int  `json:"connections"`
	}
	code, body, err := c.nodes[0].rest().Do(ctx, http.MethodGet, "/apps/"+clusterAppID+"/users/friend", nil, nil)
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &status) != nil || !status.Online || status.Connections != 2 {
		t.Errorf("GET /users/friend on n1 = %d %s %v; want online with 2 connections", code, body, err)
	}
	for _, conn := range friend {
		_ = conn.Close()
	}
	if got := watchlist(watcher); got != "offline friend" {
		t.Fatalf("watchlist event %q, want offline friend", got)
	}

	// App q allows 3 connections in all: two on n1 and one on n2 fill it, n3 refuses the fourth.
	quota := []*clusterNode{c.nodes[0], c.nodes[0], c.nodes[1]}
	held := make([]*clients.Conn, len(quota))
	for i, node := range quota {
		conn, err := clients.Dial(ctx, "ws://"+node.addr+"/app/kq", nil)
		if err != nil {
			t.Fatalf("connection %d of 3 on %s: %v", i+1, node.id, err)
		}
		held[i] = conn
		defer conn.Close()
	}
	_, err = clients.Dial(ctx, "ws://"+c.nodes[2].addr+"/app/kq", nil)
	var de *clients.DialError
	if !errors.As(err, &de) || de.Code != pusher.CodeOverQuota {
		t.Fatalf("a fourth connection on n3: %v, want 4004", err)
	}
	_ = held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for { // the released place is free once n1 has seen the close
		conn, err := clients.Dial(ctx, "ws://"+c.nodes[2].addr+"/app/kq", nil)
		if err == nil {
			_ = conn.Close()
			break
		}
		if !errors.As(err, &de) || de.Code != pusher.CodeOverQuota || time.Now().After(deadline) {
			t.Fatalf("a connection on n3 after one closed on n1: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the close to be counted, with a deadline
	}
}

// TestClusterWebhooksOutliveTheirNode: the node delivering the cluster's webhooks is killed while an
// event it read is still being retried against a failing receiver. Another node takes the lease
// after the node timeout, claims the event and delivers it once the receiver is back.
func TestClusterWebhooksOutliveTheirNode(t *testing.T) {
	const nodeTimeout = 2
	c := startCluster(t, 3, nodeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var holder, other *clusterNode
	for _, node := range c.nodes {
		if node.holder.Load() {
			holder = node
		} else {
			other = node
		}
	}
	if holder == nil {
		t.Fatal("no node logged that it delivers the cluster's webhooks")
	}
	c.failing.Store(true)
	conn := other.dial(ctx, t)
	join(ctx, t, conn, "orphaned", nil)
	deadline := time.Now().Add(10 * time.Second)
	for c.refused.Load() == 0 { // the holder has read the event and is retrying it
		if time.Now().After(deadline) {
			t.Fatal("the webhook of the new channel never reached the receiver")
		}
		time.Sleep(20 * time.Millisecond) // polling the receiver with a deadline
	}
	holder.kill(t)
	c.failing.Store(false)
	c.waitWebhooks(t, "orphaned", []string{pusher.WebhookChannelOccupied})
}

// TestClusterCountsAndMissesOnce: subscription_count and cache_miss webhooks are the cluster's, not
// each node's. Nine sockets on three nodes subscribing at once give counts that only rise, to 9
// (a count waiting for its endpoint may be replaced by a newer one, never repeated or reordered);
// leaving, counts that only fall, to 0. Three sockets on three nodes missing one cache channel
// together give one cache_miss.
func TestClusterCountsAndMissesOnce(t *testing.T) {
	c := startCluster(t, 3, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room, cache, sockets = "counted-room", "cache-empty", 9

	conns := make([]*clients.Conn, sockets)
	for i := range conns {
		conns[i] = c.nodes[i%3].dial(ctx, t)
	}
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := conn.SubscribeAndWait(ctx, room, nil); err != nil {
				t.Errorf("socket %d: %v", i, err)
			}
			if i < 3 {
				if _, err := conn.SubscribeAndWait(ctx, cache, nil); err != nil {
					t.Errorf("socket %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	c.fence(ctx, t, c.nodes[0], "fence-after-joining")
	rising := c.counts(room)
	for _, conn := range conns {
		_ = conn.Close()
	}
	c.waitWebhooks(t, room, []string{pusher.WebhookChannelOccupied, pusher.WebhookChannelVacated})
	c.fence(ctx, t, c.nodes[1], "fence-after-leaving")
	all := c.counts(room)
	if !monotonic(rising, +1) || len(rising) == 0 || rising[len(rising)-1] != sockets {
		t.Errorf("subscription counts while joining: %v; want them rising to %d", rising, sockets)
	}
	if falling := all[len(rising):]; !monotonic(falling, -1) || len(falling) == 0 || falling[len(falling)-1] != 0 {
		t.Errorf("subscription counts while leaving: %v; want them falling to 0", falling)
	}

	// Each node's own webhooks reach the receiver in order: one more miss per node, of a channel of
	// its own, proves every miss before it has arrived.
	for _, node := range c.nodes {
		fence := "cache-fence-" + node.id
		conn := node.dial(ctx, t)
		join(ctx, t, conn, fence, nil)
		deadline := time.Now().Add(20 * time.Second)
		for c.webhookCounts(fence)[pusher.WebhookCacheMiss] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no cache_miss for %s within 20 s", fence)
			}
			time.Sleep(20 * time.Millisecond) // polling the receiver with a deadline
		}
	}
	if n := c.webhookCounts(cache)[pusher.WebhookCacheMiss]; n != 1 {
		t.Errorf("%d cache_miss webhooks for three sockets on three nodes missing together, want 1", n)
	}
}

// counts returns channel's subscription_count webhooks' counts, in arrival order.
func (c *testCluster) counts(channel string) []int {
	c.receiver.mu.Lock()
	defer c.receiver.mu.Unlock()
	var out []int
	for _, e := range c.receiver.events[clusterKey] {
		if e.Channel == channel && e.Name == pusher.WebhookSubscriptionCount && e.SubscriptionCount != nil {
			out = append(out, *e.SubscriptionCount)
		}
	}
	return out
}

// monotonic reports whether each value moves strictly in direction (+1 or -1) from the one before.
func monotonic(values []int, direction int) bool {
	for i := 1; i < len(values); i++ {
		if (values[i]-values[i-1])*direction <= 0 {
			return false
		}
	}
	return true
}
