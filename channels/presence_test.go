package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/herald-rt/herald/pusher"
)

type presencePayload struct {
	Presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	} `json:"presence"`
}

func parsePresence(t *testing.T, data string) presencePayload {
	t.Helper()
	var p presencePayload
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		t.Fatalf("presence data %s: %v", data, err)
	}
	return p
}

func member(id string) string { return `{"user_id":"` + id + `","user_info":{"name":"u` + id + `"}}` }

// TestPresenceMemberSemantics walks PROTOCOL §2.5: member_added only on a user's first socket and only
// to others, member_removed only when the last socket leaves, counts by distinct user.
func TestPresenceMemberSemantics(t *testing.T) {
	s := newTestServer(t, Config{})
	a, aFT := newTestConn(t, s)
	b, bFT := newTestConn(t, s)
	b2, b2FT := newTestConn(t, s)
	const ch = "presence-room"

	p := parsePresence(t, subscribe(t, a, aFT, ch, member("1")))
	if p.Presence.Count != 1 || p.Presence.IDs[0] != "1" || string(p.Presence.Hash["1"]) != `{"name":"u1"}` {
		t.Fatalf("first member sees %+v", p)
	}

	p = parsePresence(t, subscribe(t, b, bFT, ch, member("2")))
	if p.Presence.Count != 2 {
		t.Fatalf("second member sees count %d", p.Presence.Count)
	}
	if f := next(t, aFT); f.Event != pusher.EventMemberAdded {
		t.Fatalf("first member got %s, want member_added", f.Event)
	} else if d, _ := pusher.TextOf(f.Data); d != member("2") {
		t.Errorf("member_added data = %s", d)
	}

	// Same user on a second socket: no member_added for anyone, count unchanged.
	p = parsePresence(t, subscribe(t, b2, b2FT, ch, member("2")))
	if p.Presence.Count != 2 {
		t.Errorf("second socket of user 2 sees count %d, want 2", p.Presence.Count)
	}
	// A marker event proves nothing was queued before it.
	s.publish(Message{AppID: testAppID, Channel: ch, Frame: pusher.EventFrame("marker", ch, "{}", "")})
	for _, ft := range []*fakeTransport{aFT, bFT, b2FT} {
		if f := next(t, ft); f.Event != "marker" {
			t.Errorf("got %s before the marker, want nothing", f.Event)
		}
	}

	// Closing one of user 2's sockets: no member_removed. Closing the last: member_removed to the rest.
	b.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`))
	s.publish(Message{AppID: testAppID, Channel: ch, Frame: pusher.EventFrame("marker", ch, "{}", "")})
	if f := next(t, aFT); f.Event != "marker" {
		t.Errorf("first member got %s, want no member_removed while user 2 has a socket", f.Event)
	}
	next(t, b2FT)
	b2.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`))
	f := next(t, aFT)
	if d, _ := pusher.TextOf(f.Data); f.Event != pusher.EventMemberRemoved || d != `{"user_id":"2"}` {
		t.Errorf("got %s %s, want member_removed of 2", f.Event, d)
	}
	expectNothing(t, b2FT) // the leaver hears nothing of its own departure
}

func TestPresenceLimits(t *testing.T) {
	s := newTestServer(t, Config{Apps: []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true,
		Limits: pusher.Limits{MaxPresenceMembers: 2}}}})
	const ch = "presence-small"
	a, aFT := newTestConn(t, s)
	b, bFT := newTestConn(t, s)
	c, cFT := newTestConn(t, s)
	subscribe(t, a, aFT, ch, member("1"))
	subscribe(t, b, bFT, ch, member("2"))
	next(t, aFT) // member_added 2

	c.handleFrame(subscribeFrame(t, c, ch, member("3")))
	if f := next(t, cFT); f.Event != pusher.EventError {
		t.Fatalf("third user got %s, want pusher:error", f.Event)
	}
	f := next(t, cFT)
	if f.Event != pusher.EventSubscriptionError || !strings.Contains(string(f.Data), "LimitReached") {
		t.Fatalf("third user got %s %s, want subscription_error LimitReached", f.Event, f.Data)
	}
	// An existing user's extra socket is still accepted when the channel is full.
	subscribe(t, c, cFT, ch, member("1"))

	big := `{"user_id":"9","user_info":"` + strings.Repeat("x", 2000) + `"}`
	d, dFT := newTestConn(t, s)
	d.handleFrame(subscribeFrame(t, d, "presence-other", big))
	if f := next(t, dFT); f.Event != pusher.EventError {
		t.Errorf("oversized user_info got %s, want pusher:error", f.Event)
	}
}

func TestMemoryPresence(t *testing.T) {
	p := NewMemoryPresence()
	ctx := context.Background()
	join := func(socket, user string) (bool, uint64, error) {
		return p.Join(ctx, "a", "presence-x", socket, pusher.Member{UserID: user}, 2)
	}
	first, v1, err := join("s1", "u1")
	if !first || err != nil {
		t.Fatalf("first join = %v, %v", first, err)
	}
	if first, v, _ := join("s2", "u1"); first || v != v1 {
		t.Errorf("second socket of u1: first %v, version %d, want false at %d (no change)", first, v, v1)
	}
	_, v2, err := join("s3", "u2")
	if err != nil || v2 <= v1 {
		t.Fatalf("join of u2: version %d after %d, %v", v2, v1, err)
	}
	if _, _, err := join("s4", "u3"); !errors.Is(err, ErrPresenceFull) {
		t.Errorf("third user: err = %v, want ErrPresenceFull", err)
	}
	members, v, _ := p.Members(ctx, "a", "presence-x")
	if len(members) != 2 || members[0].UserID != "u1" || members[1].UserID != "u2" || v != v2 {
		t.Errorf("members = %+v at %d, want u1, u2 at %d", members, v, v2)
	}
	if last, _, _ := p.Leave(ctx, "a", "presence-x", "s1", "u1"); last {
		t.Error("u1 left with a socket remaining")
	}
	last, v3, _ := p.Leave(ctx, "a", "presence-x", "s2", "u1")
	if !last || v3 <= v2 {
		t.Errorf("u1's last socket left: last %v at version %d after %d", last, v3, v2)
	}
	p.Leave(ctx, "a", "presence-x", "s3", "u2")
	if len(p.channels) != 0 {
		t.Errorf("empty channel kept: %d entries", len(p.channels))
	}
	// A forgotten channel that fills again keeps counting up: versions never repeat.
	if _, v4, _ := join("s5", "u1"); v4 <= v3 {
		t.Errorf("rejoin of an emptied channel at version %d, not after %d", v4, v3)
	}
}

// TestPresenceAnnouncementsAlreadyListedAreSkipped replays the race of a socket subscribing while
// another user's join is still being announced: the new subscriber's member list names the user, so
// the announcement that follows must not reach it; a subscriber from before still gets it.
func TestPresenceAnnouncementsAlreadyListedAreSkipped(t *testing.T) {
	s := newTestServer(t, Config{})
	const ch = "presence-race"
	early, earlyFT := newTestConn(t, s)
	subscribe(t, early, earlyFT, ch, member("1"))

	// User 2 joins; its member_added has not been published yet.
	m2 := pusher.Member{UserID: "2", Info: json.RawMessage(`{"name":"u2"}`)}
	first, version, err := s.presence.Join(context.Background(), testAppID, ch, "socket-of-2", m2, 0)
	if !first || err != nil {
		t.Fatalf("join of 2: %v, %v", first, err)
	}
	late, lateFT := newTestConn(t, s)
	p := parsePresence(t, subscribe(t, late, lateFT, ch, member("3")))
	if p.Presence.Count != 3 {
		t.Fatalf("late subscriber lists %v, want 1, 2 and 3", p.Presence.IDs)
	}
	next(t, earlyFT) // member_added of 3

	added := pusher.EventFrame(pusher.EventMemberAdded, ch, pusher.MemberAddedData(m2), "")
	s.publish(Message{AppID: testAppID, Channel: ch, Frame: added, Roster: version})
	if f := next(t, earlyFT); f.Event != pusher.EventMemberAdded {
		t.Errorf("early subscriber got %s, want member_added of 2", f.Event)
	}
	expectNothing(t, lateFT)

	// Announcements of later changes reach everyone.
	last, version, _ := s.presence.Leave(context.Background(), testAppID, ch, "socket-of-2", "2")
	if !last {
		t.Fatal("leave of 2 not reported last")
	}
	removed := pusher.EventFrame(pusher.EventMemberRemoved, ch, pusher.MemberRemovedData("2"), "")
	s.publish(Message{AppID: testAppID, Channel: ch, Frame: removed, Roster: version})
	for _, ft := range []*fakeTransport{earlyFT, lateFT} {
		if f := next(t, ft); f.Event != pusher.EventMemberRemoved {
			t.Errorf("got %s, want member_removed of 2", f.Event)
		}
	}
}

// announceLockChecker wraps the presence store and the broker, and counts presence changes and
// announcements (member events, subscription counts) made without their channel's lock held.
type announceLockChecker struct {
	*MemoryPresence
	*MemoryBroker
	s                 *Server
	checked, unlocked atomic.Int32
}

func (r *announceLockChecker) check(mu *sync.Mutex) {
	r.checked.Add(1)
	if mu.TryLock() {
		mu.Unlock()
		r.unlocked.Add(1)
	}
}

func (r *announceLockChecker) roster(appID, channel string) *sync.Mutex {
	return r.s.rosterLock(channelKey{appID, channel})
}

func (r *announceLockChecker) Join(ctx context.Context, appID, channel, socketID string, m pusher.Member, max int) (bool, uint64, error) {
	r.check(r.roster(appID, channel))
	return r.MemoryPresence.Join(ctx, appID, channel, socketID, m, max)
}

func (r *announceLockChecker) Leave(ctx context.Context, appID, channel, socketID, userID string) (bool, uint64, error) {
	r.check(r.roster(appID, channel))
	return r.MemoryPresence.Leave(ctx, appID, channel, socketID, userID)
}

func (r *announceLockChecker) Publish(ctx context.Context, m Message) error {
	switch {
	case m.Roster != 0:
		r.check(r.roster(m.AppID, m.Channel))
	case bytes.Contains(m.Frame, []byte(pusher.EventSubscriptionCount)):
		r.check(r.s.countLock(channelKey{m.AppID, m.Channel}))
	}
	return r.MemoryBroker.Publish(ctx, m)
}

func (r *announceLockChecker) Close() error { return r.MemoryBroker.Close() }

func newAnnounceLockChecker(t *testing.T, cfg Config) (*Server, *announceLockChecker) {
	r := &announceLockChecker{MemoryPresence: NewMemoryPresence(), MemoryBroker: NewMemoryBroker()}
	cfg.Presence, cfg.Broker = r, r
	r.s = newTestServer(t, cfg)
	return r.s, r
}

// TestPresenceChangesAreAnnouncedInOrder: each change of a presence channel is made and announced
// under the channel's roster lock, so that a user's socket leaving and another joining (a reload)
// reach the other members as removed, then added, never the reverse.
func TestPresenceChangesAreAnnouncedInOrder(t *testing.T) {
	s, r := newAnnounceLockChecker(t, Config{})
	const ch = "presence-reload"
	observer, observerFT := newTestConn(t, s)
	subscribe(t, observer, observerFT, ch, member("1"))
	old, oldFT := newTestConn(t, s)
	subscribe(t, old, oldFT, ch, member("2"))
	old.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"presence-reload"}}`))
	reloaded, reloadedFT := newTestConn(t, s)
	subscribe(t, reloaded, reloadedFT, ch, member("2"))
	for _, want := range []string{pusher.EventMemberAdded, pusher.EventMemberRemoved, pusher.EventMemberAdded} {
		if f := next(t, observerFT); f.Event != want {
			t.Fatalf("observer got %s, want %s", f.Event, want)
		}
	}
	// Three joins and a leave, each announced.
	if r.checked.Load() != 8 || r.unlocked.Load() != 0 {
		t.Errorf("%d of %d presence changes and announcements were made without the roster lock", r.unlocked.Load(), r.checked.Load())
	}
}

// TestSubscriptionCountsAreAnnouncedInOrder: a channel's count is read and announced under the
// channel's count lock, so of two subscribes close together the larger count goes out last.
func TestSubscriptionCountsAreAnnouncedInOrder(t *testing.T) {
	s, r := newAnnounceLockChecker(t, Config{Apps: []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret,
		Enabled: true, SubscriptionCount: true}}})
	a, aFT := newTestConn(t, s)
	subscribe(t, a, aFT, "counted", "")
	b, bFT := newTestConn(t, s)
	subscribe(t, b, bFT, "counted", "")
	b.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"counted"}}`))
	for _, want := range []string{`{"subscription_count":1}`, `{"subscription_count":2}`, `{"subscription_count":1}`} {
		if f := next(t, aFT); f.Event != pusher.EventSubscriptionCount || string(f.Data) != strconv.Quote(want) {
			t.Fatalf("got %s %s, want %s %s", f.Event, f.Data, pusher.EventSubscriptionCount, want)
		}
	}
	if r.checked.Load() != 3 || r.unlocked.Load() != 0 {
		t.Errorf("%d of %d counts were announced without the count lock", r.unlocked.Load(), r.checked.Load())
	}
}
