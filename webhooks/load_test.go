package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
	"github.com/herald-rt/herald/webhooks"
)

const (
	loadAppID  = "load"
	loadKey    = "load-key"
	loadSecret = "load-secret"
)

// watched is the part of a test receiver that a test waits on: mu guards the receiver's state, and
// changed is closed and replaced whenever a request has changed it.
type watched struct {
	mu      sync.Mutex
	changed chan struct{}
}

func newWatched() watched { return watched{changed: make(chan struct{})} }

// changedLocked wakes the waiters; mu is held.
func (w *watched) changedLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// await waits until cond, called with mu held, holds; it fails the test after limit, saying what
// it waited for and, when state is not nil, what the receiver had (also called with mu held).
func (w *watched) await(t *testing.T, what string, limit time.Duration, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		ok, changed := cond(), w.changed
		got := ""
		if !ok && state != nil {
			got = ": " + state()
		}
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out after %v waiting until %s%s", limit, what, got)
		}
	}
}

// verifiedWebhook reads a webhook request as a server SDK's helper would: Content-Type exactly
// application/json, the app key, the HMAC of the raw body with the app's secret (looked up by key),
// and a JSON body with at least one event. Problems are reported through t.
func verifiedWebhook(t *testing.T, r *http.Request, secrets map[string]string) pusher.Webhook {
	var hook pusher.Webhook
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading a webhook: %v", err)
		return hook
	}
	key := r.Header.Get("X-Pusher-Key")
	secret, known := secrets[key]
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !known || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Pusher-Signature") != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("invalid webhook: headers %v, body %s", r.Header, body)
	}
	if err := json.Unmarshal(body, &hook); err != nil || len(hook.Events) == 0 {
		t.Errorf("webhook body %s: %v", body, err)
	}
	return hook
}

// hookLog is a webhook receiver that verifies every request as a server SDK would and counts each
// distinct event. Guarded by mu.
type hookLog struct {
	t *testing.T
	watched
	seen     map[string]int // "name channel user" -> times received
	byName   map[string]int
	requests int
	packed   int // requests with several events: batching is off, so only a backlogged endpoint packs
}

func newHookLog(t *testing.T) *hookLog {
	return &hookLog{t: t, watched: newWatched(), seen: map[string]int{}, byName: map[string]int{}}
}

func (l *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hook := verifiedWebhook(l.t, r, map[string]string{loadKey: loadSecret})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if len(hook.Events) > 1 {
		l.packed++
	}
	for _, e := range hook.Events {
		l.seen[e.Name+" "+e.Channel+" "+e.UserID]++
		l.byName[e.Name]++
	}
	l.changedLocked()
}

// waitCounts waits until at least want events of each name have arrived.
func (l *hookLog) waitCounts(t *testing.T, limit time.Duration, want map[string]int) {
	t.Helper()
	l.await(t, fmt.Sprintf("%v have arrived", want), limit, func() bool {
		for name, n := range want {
			if l.byName[name] < n {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint(l.byName) })
}

// TestLoadPresenceWebhooks: thousands of connections join hundreds of presence channels (some users
// with two sockets), then all leave. Every distinct member gets exactly one member_added and one
// member_removed, every channel one channel_occupied and one channel_vacated: none lost, none
// duplicated, nothing else.
func TestLoadPresenceWebhooks(t *testing.T) {
	conns, chans := 2000, 200
	if testing.Short() {
		conns, chans = 400, 40
	}
	const usersPerChannel = 8 // connections per channel = conns/chans = 10: users 0 and 1 have two sockets
	perChannel := conns / chans
	grace := 300 * time.Millisecond

	hooks := newHookLog(t)
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()

	d, err := webhooks.New(webhooks.Config{
		RemovalDelay: grace,
		Apps: []webhooks.App{{ID: loadAppID, Key: loadKey, Secret: loadSecret,
			Endpoints: []webhooks.Endpoint{{URL: receiver.URL + "/hook"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := channels.New(channels.Config{
		Apps:  []pusher.App{{ID: loadAppID, Key: loadKey, Secret: loadSecret, Enabled: true}},
		Hooks: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/app/" + loadKey

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	begun := time.Now()
	clientsByIndex := make([]*clients.Conn, conns)
	defer func() {
		for _, c := range clientsByIndex {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	err = parallel(conns, func(i int) error {
		channel := fmt.Sprintf("presence-load-%03d", i%chans)
		user := fmt.Sprintf("u-%d", (i/chans)%usersPerChannel)
		c, err := clients.Dial(ctx, wsURL, &clients.DialOptions{EventBuffer: 32})
		if err != nil {
			return err
		}
		clientsByIndex[i] = c
		authorize := clients.SignedAuthorizer(loadKey, loadSecret, func(string) string {
			return `{"user_id":"` + user + `"}`
		})
		_, err = c.SubscribeAndWait(ctx, channel, authorize)
		return err
	})
	if err != nil {
		t.Fatalf("joining: %v", err)
	}
	joined := time.Since(begun)
	members := chans * min(usersPerChannel, perChannel)
	hooks.waitCounts(t, 30*time.Second, map[string]int{
		pusher.WebhookChannelOccupied: chans, pusher.WebhookMemberAdded: members,
	})
	joinHooks := time.Since(begun)

	// Everyone leaves.
	leaving := time.Now()
	err = parallel(conns, func(i int) error {
		c := clientsByIndex[i]
		clientsByIndex[i] = nil
		return c.Close()
	})
	if err != nil {
		t.Fatalf("leaving: %v", err)
	}
	hooks.waitCounts(t, 30*time.Second, map[string]int{
		pusher.WebhookChannelVacated: chans, pusher.WebhookMemberRemoved: members,
	})
	leaveHooks := time.Since(leaving)

	// Flush: whatever is still on its way arrives before Shutdown returns, so the counts are final.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := d.Shutdown(sctx); err != nil {
		t.Fatalf("webhooks Shutdown: %v", err)
	}

	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	want := map[string]int{
		pusher.WebhookChannelOccupied: chans, pusher.WebhookChannelVacated: chans,
		pusher.WebhookMemberAdded: members, pusher.WebhookMemberRemoved: members,
	}
	for name, n := range hooks.byName {
		if want[name] != n {
			t.Errorf("%d %s webhooks, want %d", n, name, want[name])
		}
	}
	for key, n := range hooks.seen {
		if n != 1 {
			t.Errorf("%q received %d times", key, n)
		}
	}
	for c := range chans {
		channel := fmt.Sprintf("presence-load-%03d", c)
		for _, name := range []string{pusher.WebhookChannelOccupied + " " + channel + " ", pusher.WebhookChannelVacated + " " + channel + " "} {
			if hooks.seen[name] != 1 {
				t.Errorf("missing %q", name)
			}
		}
		for u := range min(usersPerChannel, perChannel) {
			for _, name := range []string{pusher.WebhookMemberAdded, pusher.WebhookMemberRemoved} {
				if key := fmt.Sprintf("%s %s u-%d", name, channel, u); hooks.seen[key] != 1 {
					t.Errorf("missing %q", key)
				}
			}
		}
	}
	st := d.Stats()
	if st.DroppedTotal() != 0 || st.Delivered != int64(hooks.requests) || st.Packed != int64(hooks.packed) {
		t.Errorf("stats = %+v, receiver got %d requests", st, hooks.requests)
	}
	t.Logf("%d connections, %d presence channels, %d members: joined in %v, join webhooks done at %v; "+
		"leave webhooks done %v after the leave began (grace %v); %d requests (%d packed), %d retried, %d dropped",
		conns, chans, members, joined.Round(time.Millisecond), joinHooks.Round(time.Millisecond),
		leaveHooks.Round(time.Millisecond), grace, hooks.requests, hooks.packed, st.Retried, st.DroppedTotal())
}

// parallel runs fn(0..n-1) on at most 32 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	for range min(32, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
