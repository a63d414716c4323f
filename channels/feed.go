package channels

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// The feed is what a debug console shows of an app as it happens: connections opening and closing,
// subscriptions, publishes, client events, errors sent to clients and webhooks, with each node's
// connection count.
//
// It costs nothing while nobody watches: Note finds the app unwatched with one atomic load and
// returns. Once someone watches an app, on any node, the watching node announces it on the broker's
// feedWatchChannel, and renews the announcement every feedRenewEvery; every node then batches the
// app's events and publishes a batch every feedFlushEvery on the app's feedChannel, which only the
// watching nodes listen to. A node forgets a watch not renewed within feedWatchTTL. What a node keeps
// per watched app is bounded (feedBatchMax events a batch; the rest are counted as dropped), and
// each watcher has a bounded queue of batches (see Watch), so a busy app cannot make a console eat
// memory or slow its fan-out: a publish to many subscribers is one event, never one per delivery.
const (
	feedChannel      = "#console"       // an app's batches; a name no client or REST call may use
	feedWatchChannel = "#console-watch" // announcements of watched apps (app id "", the id in the frame)
	feedFlushEvery   = 200 * time.Millisecond
	feedCountEvery   = time.Second // a batch goes out at least this often, for the connection count
	feedRenewEvery   = 5 * time.Second
	feedWatchTTL     = 3 * feedRenewEvery
	feedBatchMax     = 500 // events per app per node per flush
	watchQueue       = 16  // batches waiting for one watcher before it misses some
	maxFeedText      = 512 // bytes of data and messages shown per event
	maxFeedChannels  = 10  // channels of a publish shown
)

// FeedKind is what a FeedEvent reports.
type FeedKind string

const (
	FeedConnect     FeedKind = "connect"
	FeedDisconnect  FeedKind = "disconnect" // Code: the close code (0: dropped without one)
	FeedSubscribe   FeedKind = "subscribe"  // UserID on presence channels
	FeedUnsubscribe FeedKind = "unsubscribe"
	FeedPublish     FeedKind = "publish"      // a REST or console publish: Channels, Event, Size
	FeedClientEvent FeedKind = "client_event" // Channel, Event, Size, SocketID
	FeedError       FeedKind = "error"        // a pusher:error sent to a client: Code, Detail
	FeedWebhook     FeedKind = "webhook"      // an attempt (Code: its HTTP status) or a drop
)

// FeedEvent is one thing that happened in an app.
type FeedEvent struct {
	Time     int64    `json:"t"` // unix milliseconds
	Kind     FeedKind `json:"kind"`
	SocketID string   `json:"socket_id,omitempty"`
	Channel  string   `json:"channel,omitempty"`
	Channels []string `json:"channels,omitempty"`
	Event    string   `json:"event,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Code     int      `json:"code,omitempty"`
	Size     int      `json:"size,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// FeedBatch is what one node publishes of a watched app every feedFlushEvery: the events since the
// last batch, and its connection count, which a console sums over the nodes heard from.
type FeedBatch struct {
	Node        string      `json:"node"`
	Time        int64       `json:"t"` // unix milliseconds
	Connections int64       `json:"connections"`
	Dropped     int         `json:"dropped,omitempty"` // events past feedBatchMax, not in Events
	Events      []FeedEvent `json:"events"`
}

// feed is the server's part of the console feed.
type feed struct {
	node string

	// watched maps an app id to its pending batch while some node watches the app. It is replaced
	// whole under mu, so Note reads it without a lock.
	watched atomic.Pointer[map[string]*feedApp]

	mu       sync.Mutex
	watchers map[string]map[*Watch]struct{} // this node's watchers by app id; guarded by mu
	flushing bool                           // the flush loop runs; guarded by mu
}

// feedApp is one watched app's pending batch on this node.
type feedApp struct {
	until atomic.Int64 // unix nanoseconds the latest announcement holds until

	mu       sync.Mutex
	events   []FeedEvent // guarded by mu
	dropped  int         // guarded by mu
	lastSent time.Time   // owned by the flush loop
}

// Note records an event of the app for the console, if any node watches the app; it never blocks.
// Time is set here.
func (s *Server) Note(appID string, e FeedEvent) {
	fa := s.feed.apps()[appID]
	if fa == nil {
		return
	}
	e.Time = time.Now().UnixMilli()
	fa.mu.Lock()
	if len(fa.events) < feedBatchMax {
		fa.events = append(fa.events, e)
	} else {
		fa.dropped++
	}
	fa.mu.Unlock()
}

// Watching reports whether any node watches the app, for a caller with work to do before Note.
func (s *Server) Watching(appID string) bool { return s.feed.apps()[appID] != nil }

// apps returns the watched apps' pending batches, nil while none is watched; it takes no lock.
func (f *feed) apps() map[string]*feedApp {
	if w := f.watched.Load(); w != nil {
		return *w
	}
	return nil
}

// feedText bounds a text shown in the console.
func feedText(s string) string { return pusher.Truncate(s, maxFeedText) }

// Watch is one console's view of an app's feed on this node: the batches of every node, as JSON.
type Watch struct {
	srv   *Server
	appID string
	// C receives each node's batches (FeedBatch as JSON). When the watcher falls watchQueue batches
	// behind, the newer ones are dropped and counted in Missed.
	C      chan []byte
	missed atomic.Int64
	once   sync.Once
}

// Missed is how many batches this watcher dropped for being behind.
func (w *Watch) Missed() int64 { return w.missed.Load() }

// Done is closed when the server shuts down: a watcher's stream must end then, or it would hold the
// HTTP server's graceful shutdown until its deadline.
func (w *Watch) Done() <-chan struct{} { return w.srv.ctx.Done() }

// Watch starts watching an app: from shortly after it returns, every node's events of the app reach
// w.C. The caller must Close it.
func (s *Server) Watch(ctx context.Context, appID string) (*Watch, error) {
	w := &Watch{srv: s, appID: appID, C: make(chan []byte, watchQueue)}
	f := &s.feed
	f.mu.Lock()
	first := len(f.watchers[appID]) == 0
	if f.watchers == nil {
		f.watchers = make(map[string]map[*Watch]struct{})
	}
	if first {
		f.watchers[appID] = make(map[*Watch]struct{})
	}
	f.watchers[appID][w] = struct{}{}
	f.mu.Unlock()
	if err := s.broker.Listen(ctx, appID, feedChannel); err != nil {
		f.mu.Lock()
		delete(f.watchers[appID], w)
		if len(f.watchers[appID]) == 0 {
			delete(f.watchers, appID)
		}
		f.mu.Unlock()
		return nil, err
	}
	s.announceWatch(appID)
	return w, nil
}

// Close stops the watch. The app stays watched, and its batches published, until the last
// announcement expires (feedWatchTTL): another console, here or on another node, may be watching.
func (w *Watch) Close() {
	w.once.Do(func() {
		f := &w.srv.feed
		f.mu.Lock()
		delete(f.watchers[w.appID], w)
		if len(f.watchers[w.appID]) == 0 {
			delete(f.watchers, w.appID)
		}
		f.mu.Unlock()
		w.srv.broker.Unlisten(w.appID, feedChannel)
	})
}

// announceWatch tells every node, this one included, that the app is watched.
func (s *Server) announceWatch(appID string) {
	s.publish(Message{Channel: feedWatchChannel, Frame: []byte(appID)})
}

// listenForWatches makes this node hear which apps are watched anywhere.
func (s *Server) listenForWatches() error {
	return s.broker.Listen(s.ctx, "", feedWatchChannel)
}

// deliverFeed handles the feed's messages, and reports whether m was one.
func (s *Server) deliverFeed(m *Message) bool {
	switch m.Channel {
	case feedWatchChannel:
		s.watched(string(m.Frame))
	case feedChannel:
		s.feed.mu.Lock()
		for w := range s.feed.watchers[m.AppID] {
			select {
			case w.C <- m.Frame:
			default:
				w.missed.Add(1)
			}
		}
		s.feed.mu.Unlock()
	default:
		return false
	}
	return true
}

// watched records an announcement: the app's events are batched until feedWatchTTL from now, and
// the flush loop runs. Only this node's apps are recorded, so the map is bounded by them.
func (s *Server) watched(appID string) {
	if s.apps.Load().byID[appID] == nil {
		return
	}
	f := &s.feed
	until := time.Now().Add(feedWatchTTL).UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.apps()
	if fa := cur[appID]; fa != nil {
		fa.until.Store(until)
		return
	}
	next := make(map[string]*feedApp, len(cur)+1)
	maps.Copy(next, cur)
	fa := &feedApp{}
	fa.until.Store(until)
	next[appID] = fa
	f.watched.Store(&next)
	if !f.flushing {
		f.flushing = true
		go s.flushFeed()
	}
}

// flushFeed publishes each watched app's batch every feedFlushEvery, renews this node's watches
// every feedRenewEvery and forgets expired ones; it returns when no app is watched any more.
func (s *Server) flushFeed() {
	tick := time.NewTicker(feedFlushEvery)
	defer tick.Stop()
	var renewed time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(renewed) >= feedRenewEvery {
				renewed = now
				for _, id := range s.watchedHere() {
					s.announceWatch(id)
				}
			}
			if !s.flushApps(now) {
				return
			}
		}
	}
}

// watchedHere lists the apps this node's consoles watch.
func (s *Server) watchedHere() []string {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	ids := make([]string, 0, len(s.feed.watchers))
	for id := range s.feed.watchers {
		ids = append(ids, id)
	}
	return ids
}

// flushApps publishes the batches due and drops expired watches. It reports whether any app is
// still watched; when none is, the flush loop is marked stopped under the same lock that starts it.
func (s *Server) flushApps(now time.Time) bool {
	f := &s.feed
	cur := f.apps()
	expired := len(cur) == 0
	for id, fa := range cur {
		if fa.until.Load() < now.UnixNano() {
			expired = true
			continue
		}
		fa.mu.Lock()
		events, dropped := fa.events, fa.dropped
		fa.events, fa.dropped = nil, 0
		fa.mu.Unlock()
		if len(events) == 0 && dropped == 0 && now.Sub(fa.lastSent) < feedCountEvery {
			continue
		}
		fa.lastSent = now
		b := FeedBatch{Node: s.cfg.NodeID, Time: now.UnixMilli(), Dropped: dropped, Events: events}
		if b.Events == nil {
			b.Events = []FeedEvent{}
		}
		if a := s.apps.Load().byID[id]; a != nil {
			b.Connections = a.conns.Load()
		}
		frame, _ := json.Marshal(b) // strings and numbers only
		s.publish(Message{AppID: id, Channel: feedChannel, Frame: frame})
	}
	if !expired {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[string]*feedApp, len(cur))
	for id, fa := range f.apps() {
		if fa.until.Load() >= now.UnixNano() {
			next[id] = fa
		}
	}
	if len(next) == 0 {
		f.watched.Store(nil)
		f.flushing = false
		return false
	}
	f.watched.Store(&next)
	return true
}
