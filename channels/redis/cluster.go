package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/rs/zerolog"
)

// Config configures a node's part in a cluster.
type Config struct {
	// URL is redis://[user:pass@]host:port/db, or rediss:// for TLS. rueidis also reads Sentinel
	// (redis://…?master_set=name) from it.
	URL string
	// Prefix namespaces every key and pub/sub channel, so several clusters can share one Redis.
	Prefix string
	// NodeID names this node in Redis, logs and metrics; it must be unique in the cluster.
	NodeID string
	// NodeTimeout is how long a node may miss heartbeats before the others evict it.
	NodeTimeout time.Duration
	// RemovalDelay is the webhook grace of channel_vacated and member_removed (webhook_delay): a
	// matching addition within it, on any node, cancels both.
	RemovalDelay time.Duration
	// CallTimeout bounds every Redis call. Default 3s.
	CallTimeout time.Duration
	// ReconcileInterval is how often the node compares its records in Redis with the sockets it
	// holds, mending what two passes in a row found apart (see reconcile.go). Default 30s; never
	// less than NodeTimeout.
	ReconcileInterval time.Duration
	Logger            *zerolog.Logger
}

// Cluster is this node's connection to the cluster's Redis: the stores and broker a channels.Server
// runs on, the node's heartbeat, the eviction of dead nodes, and the webhook outbox.
type Cluster struct {
	cfg     Config
	log     zerolog.Logger
	client  rueidis.Client
	keys    keys
	scripts scriptSet
	broker  *Broker
	ctx     context.Context // ends at Close
	stop    context.CancelFunc
	wg      sync.WaitGroup

	// The node's registration: written by the liveness loop (and Start), read by the reconcile loop.
	reg atomic.Pointer[registration]
	// healthySince is when the liveness loop last regained Redis (unix ns); a node reaps others only
	// after a full node timeout of health, so an outage everyone saw reaps no one.
	healthySince atomic.Int64

	local Local    // set by Start
	hooks Webhooks // set by Start; nil: no webhooks

	// The outbox consumer reads until Leave (or Close) calls stopReading, and holds the lease until
	// what it handed over is done, or Close; outboxDone is closed when it has let the lease go.
	stopReading context.CancelFunc
	outboxDone  chan struct{}
	// inFlight holds the outbox entries handed to the dispatcher and not acknowledged yet (app and
	// entry id), so that none is handed over twice when this node reads them again (taking the
	// lease back, or claiming what idled). Guarded by inFlightMu; at most about maxInFlight.
	inFlightMu sync.Mutex
	inFlight   map[string]struct{}
	delivered  map[string]struct{} // delivered, but the acknowledgement failed; at most maxInFlight

	departed *departures // removals Redis never heard of, for the reconcile loop to report

	mended atomic.Int64 // records the reconcile loop mended, ever

	// chores runs evictions and restores off the heartbeat (see chore); restoring is set from a
	// reset's detection until its restore is done.
	chores    chan func()
	restoring atomic.Bool

	// outboxApps are the apps whose outboxes this node may deliver; appsChanged is set when they
	// are replaced (SetApps), for the outbox loop to make new apps' consumer groups.
	outboxApps  atomic.Pointer[[]string]
	appsChanged atomic.Bool

	// leaving is set by Leave: the node has removed itself, and its loops must not find it evicted
	// and register it again.
	leaving atomic.Bool
}

// Open connects to Redis and checks it answers; nothing is registered until Start.
func Open(cfg Config) (*Cluster, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "herald"
	}
	if cfg.NodeID == "" {
		cfg.NodeID = randomID(6)
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 15 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 3 * time.Second
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 30 * time.Second
	}
	// A pass must leave the other nodes time to find out Redis lost its data (a heartbeat, a sixth of
	// the timeout) and record their sockets again, before it reports departures against that state.
	cfg.ReconcileInterval = max(cfg.ReconcileInterval, cfg.NodeTimeout)
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.ClientName = "herald-" + cfg.NodeID
	opt.DisableCache = true
	opt.Dialer.Timeout = 2 * time.Second
	opt.ConnWriteTimeout = cfg.CallTimeout
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", redactURL(cfg.URL), err)
	}
	if client.Mode() == rueidis.ClientModeCluster {
		// The transition scripts touch a channel's keys, the app's outbox and the node's sets in one
		// atomic step, which Redis Cluster cannot run across slots.
		client.Close()
		return nil, fmt.Errorf("redis %s is a Redis Cluster, which Herald does not support: use one Redis (or Valkey) primary, with Sentinel for failover (redis://sentinel:26379/?master_set=NAME)", redactURL(cfg.URL))
	}
	ctx, stop := context.WithCancel(context.Background())
	cl := &Cluster{cfg: cfg, client: client, keys: keys{cfg.Prefix}, scripts: loadScripts(), ctx: ctx, stop: stop,
		inFlight: make(map[string]struct{}), delivered: make(map[string]struct{}), departed: newDepartures(),
		chores: make(chan func(), 16)}
	cl.log = zerolog.Nop()
	if cfg.Logger != nil {
		cl.log = cfg.Logger.With().Str("node_id", cfg.NodeID).Logger()
	}
	cl.broker = newBroker(cl)
	return cl, nil
}

// NodeID returns the node's name in the cluster.
func (cl *Cluster) NodeID() string { return cl.cfg.NodeID }

// Broker, Channels, Users, Cache and Quota are the stores a channels.Server runs on in a cluster.
func (cl *Cluster) Broker() *Broker    { return cl.broker }
func (cl *Cluster) Channels() Channels { return Channels{cl} }
func (cl *Cluster) Users() Users       { return Users{cl} }
func (cl *Cluster) Cache() Cache       { return Cache{cl} }
func (cl *Cluster) Quota() Quota       { return Quota{cl} }

// Start registers the node, evicting first whatever an earlier process of the same node id left
// behind, and starts the heartbeat, the eviction of dead nodes and, with hooks, the outbox
// consumer. local is the server the stores serve, for re-recording its state; apps lists the apps
// whose outboxes this node may deliver.
func (cl *Cluster) Start(local Local, hooks Webhooks, apps []string) error {
	cl.local, cl.hooks = local, hooks
	cl.SetApps(apps)
	ctx, cancel := context.WithTimeout(cl.ctx, 30*time.Second)
	defer cancel()
	if _, err := cl.evict(ctx, cl.cfg.NodeID, anyToken); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := cl.register(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	cl.healthySince.Store(time.Now().UnixNano())
	cl.wg.Add(3)
	go cl.liveness()
	go cl.reconcileLoop()
	go cl.runChores()
	var readCtx context.Context
	readCtx, cl.stopReading = context.WithCancel(cl.ctx)
	cl.outboxDone = make(chan struct{})
	if hooks != nil {
		go cl.deliverOutbox(readCtx)
	} else {
		close(cl.outboxDone)
	}
	return nil
}

// Leave takes the node out of the cluster at once (a graceful shutdown), so the others need not wait
// out the node timeout: it removes the node's records (what its sockets left goes through the
// outbox as usual) and stops reading the outbox. It keeps the webhook lease while the dispatcher
// finishes what it was handed (or until Close), so that the next holder neither sends those events
// again nor sends later ones before them.
func (cl *Cluster) Leave(ctx context.Context) error {
	cl.leaving.Store(true)
	_, err := cl.evict(ctx, cl.cfg.NodeID, anyToken)
	if cl.stopReading != nil {
		cl.stopReading()
	}
	return err
}

// Close stops the node's loops, lets the webhook lease go, and closes the connections. Call Leave
// first to leave the cluster at once; otherwise the others evict the node after the node timeout.
func (cl *Cluster) Close() {
	if cl.stopReading != nil {
		cl.stopReading()
	}
	cl.stop()
	if cl.outboxDone != nil {
		<-cl.outboxDone
	}
	cl.wg.Wait()
	cl.client.Close()
}

func (cl *Cluster) register(ctx context.Context) error {
	token, epoch := randomID(8), randomID(8)
	got, err := cl.run(ctx, cl.scripts.register, cl.cfg.NodeID, token, epoch).ToString()
	if err != nil {
		return err
	}
	cl.reg.Store(&registration{token: token, epoch: got, at: time.Now()})
	return nil
}

// registration is the node's entry in the cluster: its token in the alive hash, the cluster's
// epoch it registered in (see heartbeat.lua), and when.
type registration struct {
	token, epoch string
	at           time.Time
}

// anyToken evicts a node whatever its registration: this process's own id at start and at Leave.
const anyToken = "*"

// evict removes every record of a node registered under token, a batch per round trip, and tells
// the watchers of the users it took offline. It stops early if the node registered again.
func (cl *Cluster) evict(ctx context.Context, node, token string) (int, error) {
	total := 0
	for {
		vals, err := cl.run(ctx, cl.scripts.evict, node, "200", cl.delayMS(), token).ToArray()
		if err != nil || len(vals) == 0 {
			return total, errOr(err)
		}
		n, _ := vals[0].AsInt64()
		total += int(n)
		for i := 1; i+1 < len(vals); i += 2 {
			app, _ := vals[i].ToString()
			user, _ := vals[i+1].ToString()
			if cl.local != nil {
				cl.local.Offline(app, user)
			}
		}
		if n == 0 {
			return total, nil
		}
	}
}

// run executes a script with the prefix as its first argument.
func (cl *Cluster) run(ctx context.Context, s *rueidis.Lua, args ...string) rueidis.RedisResult {
	return s.Exec(ctx, cl.client, nil, append([]string{cl.cfg.Prefix}, args...))
}

// call bounds one store call.
func (cl *Cluster) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cl.cfg.CallTimeout)
}

func (cl *Cluster) delayMS() string {
	return fmt.Sprint(cl.cfg.RemovalDelay.Milliseconds())
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(u string) string {
	if opt, err := rueidis.ParseURL(u); err == nil && opt.Password != "" {
		return "redis://…@" + opt.InitAddress[0]
	}
	return u
}

// backoff spaces out reconnection attempts: 100 ms doubling to 5 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 100 * time.Millisecond }
func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	b.d = min(2*b.d, 5*time.Second)
}

var errClosed = errors.New("redis: cluster closed")

// Stats is a snapshot of the node's cluster counters, for metrics.
type Stats struct {
	Healthy          bool          // the node hears the cluster (see Broker.Healthy)
	PubSubReconnects int64         // subscriber connections made after the first
	PublishErrors    int64         // publishes Redis did not take (answered 503)
	ProbeLag         time.Duration // the last pub/sub probe's round trip
	InboxBytes       int64         // received and not yet delivered
	InboxDropped     int64         // dropped past the inbox's bound
	Mended           int64         // records the anti-entropy pass mended
}

// Stats reads the node's counters.
func (cl *Cluster) Stats() Stats {
	b := cl.broker
	st := Stats{Healthy: b.Healthy() == nil, PubSubReconnects: b.reconnects.Load(), PublishErrors: b.pubErrors.Load(),
		ProbeLag: time.Duration(b.probeRTT.Load()), Mended: cl.mended.Load()}
	if b.inbox != nil {
		st.InboxBytes, st.InboxDropped = b.inbox.queued.Load(), b.inbox.dropped.Load()
	}
	return st
}

// Nodes lists the nodes registered in the cluster, by id, with when each last beat.
func (cl *Cluster) Nodes(ctx context.Context) (map[string]time.Time, error) {
	ctx, cancel := cl.call(ctx)
	defer cancel()
	vals, err := cl.client.Do(ctx, cl.client.B().Zrange().Key(cl.keys.global("nodes")).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(vals))
	for _, v := range vals {
		out[v.Member] = time.UnixMilli(int64(v.Score))
	}
	return out, nil
}

// SetApps replaces the apps whose webhook outboxes this node may deliver (a configuration reload).
func (cl *Cluster) SetApps(apps []string) {
	apps = append([]string(nil), apps...)
	cl.outboxApps.Store(&apps)
	cl.appsChanged.Store(true)
}
