package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
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

// recordingBroker delivers nowhere and keeps what was published.
type recordingBroker struct {
	mu        sync.Mutex
	published []Message
}

func (b *recordingBroker) Publish(_ context.Context, m Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, m)
	return nil
}
func (b *recordingBroker) Start(func(Message)) error                    { return nil }
func (b *recordingBroker) Listen(context.Context, string, string) error { return nil }
func (b *recordingBroker) Unlisten(string, string)                      {}
func (b *recordingBroker) Close() error                                 { return nil }

func (b *recordingBroker) take() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.published
	b.published = nil
	return out
}

func TestMemoryChannels(t *testing.T) {
	b := &recordingBroker{}
	p := NewMemoryChannels(b)
	ctx := context.Background()
	join := func(socket, user string) (Joined, error) {
		return p.Subscribe(ctx, Subscription{AppID: "a", Channel: "presence-x", SocketID: socket,
			Member: &pusher.Member{UserID: user}, MaxMembers: 2})
	}
	leave := func(socket, user string) Left {
		l, _ := p.Unsubscribe(ctx, Subscription{AppID: "a", Channel: "presence-x", SocketID: socket, Member: &pusher.Member{UserID: user}})
		return l
	}
	j1, err := join("s1", "u1")
	if !j1.Added || !j1.Occupied || j1.Count != 1 || err != nil || len(j1.Roster.Members) != 1 {
		t.Fatalf("first join = %+v, %v", j1, err)
	}
	if m := b.take(); len(m) != 1 || m[0].Roster != j1.Roster.Version || m[0].Except != "s1" || !bytes.Contains(m[0].Frame, []byte(pusher.EventMemberAdded)) {
		t.Errorf("first join announced %+v, want member_added at %d except s1", m, j1.Roster.Version)
	}
	if j, _ := join("s2", "u1"); j.Added || j.Occupied || j.Count != 2 || j.Version <= j1.Version {
		t.Errorf("second socket of u1: %+v, want no member added, count 2, a later version", j)
	}
	j3, err := join("s3", "u2")
	if err != nil || !j3.Added || j3.Roster.Version <= j1.Roster.Version {
		t.Fatalf("join of u2: %+v, %v", j3, err)
	}
	if _, err := join("s4", "u3"); !errors.Is(err, ErrPresenceFull) {
		t.Errorf("third user: err = %v, want ErrPresenceFull", err)
	}
	r, _ := p.Members(ctx, "a", "presence-x")
	if len(r.Members) != 2 || r.Members[0].UserID != "u1" || r.Members[1].UserID != "u2" || r.Version < j3.Version {
		t.Errorf("members = %+v, want u1, u2 at %d or later", r, j3.Version)
	}
	b.take()
	if l := leave("s1", "u1"); l.Removed || l.Vacated {
		t.Errorf("u1 left with a socket remaining: %+v", l)
	}
	if l := leave("s2", "u1"); !l.Removed {
		t.Error("u1's last socket left, not reported")
	}
	m := b.take()
	if len(m) != 1 || m[0].Roster <= j3.Version || !bytes.Contains(m[0].Frame, []byte(pusher.EventMemberRemoved)) {
		t.Fatalf("leave announced %+v, want one member_removed after %d", m, j3.Version)
	}
	v3 := m[0].Roster
	if l := leave("s3", "u2"); !l.Vacated || l.Count != 0 {
		t.Errorf("last socket left: %+v, want vacated", l)
	}
	if len(p.apps) != 0 {
		t.Errorf("empty channel kept: %d apps", len(p.apps))
	}
	// A forgotten channel that fills again keeps counting up: versions never repeat.
	if j4, _ := join("s5", "u1"); j4.Roster.Version <= v3 {
		t.Errorf("rejoin of an emptied channel at version %d, not after %d", j4.Roster.Version, v3)
	}
}

// TestPresenceAnnouncementsAlreadyListedAreSkipped replays the race of a socket subscribing while
// another user's join is still being announced: the new subscriber's member list names the user, so
// the announcement that follows must not reach it; a subscriber from before still gets it.
func TestPresenceAnnouncementsAlreadyListedAreSkipped(t *testing.T) {
	s := newTestServer(t, Config{})
	store := s.store.(*MemoryChannels)
	const ch = "presence-race"
	early, earlyFT := newTestConn(t, s)
	subscribe(t, early, earlyFT, ch, member("1"))

	// User 2 joins; its member_added has not been published yet.
	m2 := pusher.Member{UserID: "2", Info: json.RawMessage(`{"name":"u2"}`)}
	j, err := store.join(Subscription{AppID: testAppID, Channel: ch, SocketID: "socket-of-2", Member: &m2})
	if !j.Added || err != nil {
		t.Fatalf("join of 2: %+v, %v", j, err)
	}
	version := j.Roster.Version
	late, lateFT := newTestConn(t, s)
	p := parsePresence(t, subscribe(t, late, lateFT, ch, member("3")))
	if p.Presence.Count != 3 {
		t.Fatalf("late subscriber lists %v, want 1, 2 and 3", p.Presence.IDs)
	}
	next(t, earlyFT) // member_added of 3

	s.publish(memberAdded(testAppID, ch, "socket-of-2", m2, version))
	if f := next(t, earlyFT); f.Event != pusher.EventMemberAdded {
		t.Errorf("early subscriber got %s, want member_added of 2", f.Event)
	}
	expectNothing(t, lateFT)

	// Announcements of later changes reach everyone.
	if l, _ := s.store.Unsubscribe(context.Background(), Subscription{AppID: testAppID, Channel: ch, SocketID: "socket-of-2", Member: &m2}); !l.Removed {
		t.Fatal("leave of 2 not reported")
	}
	for _, ft := range []*fakeTransport{earlyFT, lateFT} {
		if f := next(t, ft); f.Event != pusher.EventMemberRemoved {
			t.Errorf("got %s, want member_removed of 2", f.Event)
		}
	}
}

// TestPresenceChangesAreAnnouncedInOrder: a user's socket leaving and another joining (a reload)
// reach the other members as removed, then added, never the reverse, which would leave the user out
// of their member lists; run concurrently, the user may also simply stay, announcing nothing.
func TestPresenceChangesAreAnnouncedInOrder(t *testing.T) {
	s := newTestServer(t, Config{})
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

	for round := range 200 {
		leaving := reloaded
		joining, joiningFT := newTestConn(t, s)
		frame := subscribeFrame(t, joining, ch, member("2"))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			leaving.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"presence-reload"}}`))
		}()
		go func() {
			defer wg.Done()
			joining.handleFrame(frame)
		}()
		wg.Wait()
		next(t, joiningFT) // subscription_succeeded
		reloaded = joining
		s.publish(Message{AppID: testAppID, Channel: ch, Frame: pusher.EventFrame("marker", ch, "{}", "")})
		var seen []string
		for f := next(t, observerFT); f.Event != "marker"; f = next(t, observerFT) {
			seen = append(seen, f.Event)
		}
		switch strings.Join(seen, " ") {
		case "", pusher.EventMemberRemoved + " " + pusher.EventMemberAdded:
		default:
			t.Fatalf("round %d: observer saw %v: user 2 must end up listed", round, seen)
		}
	}
}

// TestSubscriptionCountsAreAnnouncedInOrder: of two counts announced close together, the later one
// is heard last, so a subscriber's last count is the channel's count.
func TestSubscriptionCountsAreAnnouncedInOrder(t *testing.T) {
	s := newTestServer(t, Config{Apps: []pusher.App{{ID: testAppID, Key: testKey, Secret: testSecret,
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

	// Many subscribes and leaves at once: whatever the interleaving, the last count heard is the
	// final one.
	const n = 20
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i], _ = newTestConn(t, s)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.handleFrame([]byte(`{"event":"pusher:subscribe","data":{"channel":"counted"}}`))
			if i%2 == 0 {
				c.handleFrame([]byte(`{"event":"pusher:unsubscribe","data":{"channel":"counted"}}`))
			}
		}()
	}
	wg.Wait()
	s.publish(Message{AppID: testAppID, Channel: "counted", Frame: pusher.EventFrame("marker", "counted", "{}", "")})
	last := ""
	for f := next(t, aFT); f.Event != "marker"; f = next(t, aFT) {
		last = string(f.Data)
	}
	if want := strconv.Quote(`{"subscription_count":` + strconv.Itoa(1+n/2) + `}`); last != want {
		t.Errorf("last count heard %s, want %s", last, want)
	}
}
