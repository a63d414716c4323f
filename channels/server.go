package channels

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// Apps are the tenants this server serves; at least one.
	Apps []pusher.App
	// PathPrefix also mounts every route under this prefix (e.g. "/admin/wss" for a reverse proxy that
	// forwards it); the unprefixed routes keep working. Empty: no prefix.
	PathPrefix string
	// ActivityTimeout is announced to clients and is the silence after which the server probes with a
	// Ping frame. Default 120 s, Pusher's value.
	ActivityTimeout time.Duration
	// PongTimeout is how long a probed client has to answer before it is closed with 4201. Default 30 s.
	PongTimeout time.Duration
	// WriteTimeout bounds one batch of writes to a client. Default 10 s.
	WriteTimeout time.Duration
	// MaxQueueBytes bounds the frames waiting for one client; past it the client is disconnected with
	// 4100 as a slow consumer. Default 1 MiB.
	MaxQueueBytes int
	// MaxFrameBytes bounds one inbound frame; larger frames are discarded with a pusher:error and the
	// connection kept. Frames over 16 times this close the connection (1009). Default 64 KiB.
	MaxFrameBytes int
	// MaxConnections caps this node's connections (4100 past it). Zero: unlimited.
	MaxConnections int
	// NoSubscriptionErrors stops the channel-scoped pusher:subscription_error sent next to the
	// Pusher-style pusher:error when a subscription fails. Zero: sent.
	NoSubscriptionErrors bool
	// TrustForwardedProto counts X-Forwarded-Proto: https as TLS for apps that require TLS. Only set
	// it behind a proxy that overwrites the header.
	TrustForwardedProto bool
	// Broker carries publishes between nodes. Nil: a MemoryBroker (one node).
	Broker Broker
	// Channels records every channel's subscriptions and presence members. Nil: a MemoryChannels
	// (one node).
	Channels Channels
	// Users records signed-in users. Nil: a MemoryUsers (one node).
	Users Users
	// Cache keeps the last event of cache channels. Nil: a MemoryCache of 100,000 channels and
	// CacheMaxBytes.
	Cache Cache
	// Quota counts the connections of apps with a MaxConnections on every node. Nil: each node
	// counts its own.
	Quota Quota
	// CacheMaxBytes bounds the default MemoryCache's events. Default 64 MiB.
	CacheMaxBytes int
	// CacheTTL is how long a cache channel keeps its last event. Default 30 min, Pusher's value.
	CacheTTL time.Duration
	// TokenKeys verifies the bearer tokens of the token authorization endpoints, by app id. An app
	// not listed verifies HS256 tokens with its secret.
	TokenKeys map[string]auth.TokenKey
	// WatchlistGrace delays a watched user's offline event, so a page reload is not seen as leaving.
	// Default 3 s.
	WatchlistGrace time.Duration
	// Hooks receives lifecycle events for webhooks. Nil: none.
	Hooks Hooks
	// Logger is the server's logger. Nil: nothing is logged.
	Logger *zerolog.Logger
	// TrustedProxies are the addresses whose X-Forwarded-For is believed when a rate limit needs a
	// client's address. None: the peer's address is the client's.
	TrustedProxies []netip.Prefix
	// HTTPSessionTimeout closes an HTTP session (xhr_streaming, xhr_polling) that has had no receiving
	// request for this long: its client is gone. Default 5 s.
	HTTPSessionTimeout time.Duration
	// HTTPHostname, when set, is sent in the open frame of every HTTP session: pusher-js sends the
	// session's later requests to that host (same port and path), so that behind a load balancer
	// without affinity they reach this node. Empty: the client keeps its host.
	HTTPHostname string
	// Observer receives latency measurements (REST requests, sampled publish-to-delivery). Nil: none
	// is taken. Counts are read with AppStats and Stats.
	Observer Observer
	// NodeID names this node in the console feed (see Watch). Empty: the node is unnamed, as one
	// alone can be.
	NodeID string
	// Now is the clock REST timestamps are checked against. Nil: time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	setDefault(&c.ActivityTimeout, 120*time.Second)
	setDefault(&c.PongTimeout, 30*time.Second)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.HTTPSessionTimeout, 5*time.Second)
	setDefault(&c.MaxQueueBytes, 1<<20)
	setDefault(&c.MaxFrameBytes, 64<<10)
	setDefault(&c.CacheTTL, 30*time.Minute)
	setDefault(&c.WatchlistGrace, 3*time.Second)
	if c.Broker == nil {
		c.Broker = NewMemoryBroker()
	}
	if c.Channels == nil {
		c.Channels = NewMemoryChannels(c.Broker)
	}
	if c.Users == nil {
		c.Users = NewMemoryUsers()
	}
	if c.Hooks == nil {
		c.Hooks = noHooks{}
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Cache == nil {
		c.Cache = NewMemoryCache(0, c.CacheMaxBytes, c.Now)
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Server is one Herald node: it accepts WebSocket clients and REST calls for its apps.
type Server struct {
	// Static after New.
	cfg    Config
	log    zerolog.Logger
	apps   atomic.Pointer[appRegistry] // replaced whole by Reload
	broker Broker
	store  Channels
	// storeHooks: the store records the transition webhooks itself (WebhookRecorder).
	storeHooks bool
	users      Users
	cache      Cache
	hooks      Hooks
	poller     *ws.Poller // nil where idle sockets cannot park
	readers    *readerPool
	// ctx is what store calls made for connections run under; it ends when Shutdown returns.
	ctx    context.Context
	cancel context.CancelFunc

	// Each guarded by its own lock.
	hub      *hub
	conns    *connRegistry
	offline  offlineTimers
	counts   countThrottle
	waiters  sync.Map // *Conn → chan struct{}, see Conn.gone
	sessions sessionRegistry
	feed     feed
	misses   missThrottle // cache_miss webhooks, before the Cache is asked (see cacheMiss)

	stats     Stats
	draining  atomic.Bool
	publishes atomic.Uint64 // REST publishes, for sampling their latency
}

// Stats are the server's counters, read with atomic loads.
type Stats struct {
	// ConnectionsAccepted counts connections that passed admission.
	ConnectionsAccepted atomic.Int64
	// SlowConsumers counts clients disconnected because their backlog passed MaxQueueBytes.
	SlowConsumers atomic.Int64
	// Deliveries counts frames enqueued to subscribers by publishes.
	Deliveries atomic.Int64
	// SubscribesRefused counts subscribe requests refused by the per-connection rate limit.
	SubscribesRefused atomic.Int64
}

// New returns a server for cfg, or an error naming the bad setting.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	apps, err := newAppRegistry(cfg.Apps, cfg.TokenKeys)
	if err != nil {
		return nil, err
	}
	poller, err := ws.NewPoller()
	if err != nil {
		cfg.Logger.Warn().Err(err).Msg("no poller: every idle connection keeps a goroutine")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     *cfg.Logger,
		hub:     newHub(),
		conns:   newConnRegistry(),
		broker:  cfg.Broker,
		store:   cfg.Channels,
		users:   cfg.Users,
		cache:   cfg.Cache,
		hooks:   cfg.Hooks,
		poller:  poller,
		readers: newReaderPool(),
		ctx:     ctx,
		cancel:  cancel,
		offline: offlineTimers{pending: make(map[userKey]*time.Timer)},
	}
	s.apps.Store(apps)
	if r, ok := cfg.Channels.(WebhookRecorder); ok {
		s.storeHooks = r.RecordsWebhooks()
	}
	err = s.broker.Start(s.deliver)
	if err == nil {
		err = s.listenForWatches()
	}
	if err != nil {
		cancel()
		_ = poller.Close()
		return nil, err
	}
	go s.sweepLiveness()
	return s, nil
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Connections returns the number of connections on this node that have not yet left their channels:
// open ones, and closing ones until their cleanup.
func (s *Server) Connections() int { return int(s.conns.live.Load()) }

// publish hands an encoded frame to the broker for a connection or a timer. A broker failure loses
// this one frame; it is logged, never retried in line, so a sick broker cannot stall a connection's
// reader. REST publishes call the broker themselves, to answer a failure with 503.
func (s *Server) publish(m Message) {
	if err := s.broker.Publish(s.ctx, m); err != nil {
		s.log.Error().Err(err).Str("app_id", m.AppID).Str("channel", m.Channel).Msg("publish failed")
	}
}

// deliver is where the broker hands every message to this node.
func (s *Server) deliver(m Message) {
	if isInternal(m.Channel) && s.deliverFeed(&m) {
		return
	}
	if m.Terminate {
		s.hub.each(channelKey{m.AppID, m.Channel}, func(c *Conn) {
			c.closeWith(pusher.CloseError(pusher.CodeUnauthorized, "Connection terminated by the application"))
		})
		return
	}
	n := s.hub.fanout(&m)
	if n > 0 {
		s.stats.Deliveries.Add(int64(n))
		if a := s.apps.Load().byID[m.AppID]; a != nil {
			a.stats.messagesOut.Add(int64(n))
			a.stats.bytesOut.Add(int64(n * len(m.Frame)))
		}
	}
	if m.Published != 0 && s.cfg.Observer != nil {
		s.cfg.Observer.Delivered(m.AppID, time.Since(time.Unix(0, m.Published)))
	}
}

// emit reports a lifecycle event to the hooks; Herald's internal #-channels have no lifecycle.
func (s *Server) emit(appID string, e pusher.WebhookEvent) {
	if !isInternal(e.Channel) {
		s.hooks.Emit(appID, e)
	}
}

// isInternal reports whether a channel is one of Herald's own: #server-to-user- channels (which
// clients may name) and the #watchlist- channels that carry watchlist events (which they may not).
func isInternal(channel string) bool { return channel != "" && channel[0] == '#' }

// Handler returns the HTTP handler: /up, /ready, the WebSocket route /app/{key} and the REST API
// /apps/{app_id}/…, also under PathPrefix when one is set.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	routes := func(r chi.Router) {
		r.Get("/up", s.serveUp)
		r.Get("/ready", s.serveReady)
		r.Get("/app/{key}", s.serveWebSocket)
		s.sessionRoutes(r)
		r.Route("/apps/{appID}", s.restRoutes)
	}
	routes(r)
	if s.cfg.PathPrefix != "" && s.cfg.PathPrefix != "/" {
		r.Route(s.cfg.PathPrefix, routes)
	}
	r.NotFound(s.serveNotFound)
	return r
}

func (s *Server) serveUp(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("OK"))
}

// Shutdown refuses new connections, tells every client to reconnect at once (4200) and closes them
// with bounded parallelism, returning when all are gone or ctx ends (then the rest are cut). It is
// idempotent. The caller stops the HTTP server afterwards, which finishes in-flight REST calls.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	const parallel = 64
	defer s.cancel()
	conns := s.conns.snapshot()
	work := make(chan *Conn)
	var wg sync.WaitGroup
	for range min(parallel, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.closeWith(pusher.CloseError(pusher.CodeReconnect, "Server shutting down: reconnect"))
				select {
				case <-c.gone():
				case <-ctx.Done():
					c.hangUp()
				}
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	err := s.broker.Close()
	_ = s.poller.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
