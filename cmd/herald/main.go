// Command herald runs the Herald channels server: Pusher-compatible WebSocket and REST on one port.
//
//	herald                       # the embedded default app on :6001
//	herald --config herald.json  # apps and settings from a file
//	herald --help                # every flag and its environment variable
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/redis"
	"github.com/herald-rt/herald/webhooks"
)

func main() {
	if code, ok := subcommand(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stderr))
}

// run starts Herald and blocks until SIGINT or SIGTERM has shut it down. It returns the exit code: 2
// for a setting Herald cannot start with, 1 for a listener that cannot open or a shutdown that ran out
// of time.
func run(args []string, lookup func(string) (string, bool), stderr io.Writer) int {
	h, err := newHerald(args, lookup, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 2
	}
	// Signals are caught from before the listener opens, so a SIGTERM never finds the default action.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go h.reloadOn(ctx, hup)
	ln, dbg, err := h.listen()
	if err != nil {
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	defer dbg.Close()
	return h.serve(ctx, stop, ln)
}

// herald is the wired process: settings, logger, channels server, webhook dispatcher, the count of
// net/http's own errors and, on a cluster, the node's part in it.
type herald struct {
	o          *options
	log        zerolog.Logger
	srv        *channels.Server
	hooks      *webhooks.Dispatcher
	httpErrors *httpErrors
	cluster    *redis.Cluster // nil: one node alone
	metrics    *metrics       // nil: no --metrics-addr
	cert       *certificate   // nil: plain HTTP
	// reread loads the settings again, as at start (a SIGHUP's reload).
	reread func() (*options, error)
}

// newHerald reads the settings and builds everything that needs no listener. Every error is a
// setting Herald cannot start with.
func newHerald(args []string, lookup func(string) (string, bool), stderr io.Writer) (*herald, error) {
	o, err := loadOptions(args, lookup, stderr)
	if err != nil {
		return nil, err
	}
	h := &herald{o: o, reread: func() (*options, error) { return loadOptions(args, lookup, io.Discard) }}
	if h.log, err = newLogger(o, stderr); err != nil {
		return nil, err
	}
	h.httpErrors = newHTTPErrors(&h.log)
	if o.TLSCert != "" {
		if h.cert, err = loadCertificate(o.TLSCert, o.TLSKey, &h.log); err != nil {
			return nil, err
		}
	}
	hookCfg := o.webhookConfig(&h.log)
	if o.MetricsAddr != "" {
		h.metrics = newMetrics(h)
	}
	observer := &webhookObserver{metrics: h.metrics}
	if h.metrics != nil || o.Console {
		hookCfg.Observer = observer
	}
	if h.hooks, err = webhooks.New(hookCfg); err != nil {
		return nil, err
	}
	cfg, err := o.serverConfig(&h.log)
	if err != nil {
		return nil, err
	}
	cfg.Hooks = h.hooks
	if h.metrics != nil {
		cfg.Observer = h.metrics
	}
	if h.cluster, err = o.openCluster(&cfg, &h.log); err != nil {
		return nil, err
	}
	if h.cluster != nil {
		cfg.NodeID = h.cluster.NodeID()
	}
	if h.srv, err = channels.New(cfg); err != nil {
		h.closeCluster()
		return nil, err
	}
	observer.srv.Store(h.srv)
	if h.cluster != nil {
		var appIDs []string
		for _, a := range o.apps() {
			appIDs = append(appIDs, a.ID)
		}
		if err := h.cluster.Start(h.srv, h.hooks, appIDs); err != nil {
			h.closeCluster()
			return nil, fmt.Errorf("redis_url (HERALD_REDIS_URL): %w", err)
		}
		h.log.Info().Str("node_id", h.cluster.NodeID()).Str("redis_prefix", o.RedisPrefix).
			Dur("node_timeout", o.ClusterNodeTimeout.duration()).Msg("cluster node started")
	}
	if limit, ok := openFilesLimit(); ok {
		if n, derived := o.maxConnections(limit, ok); derived {
			h.log.Info().Int("max_connections", n).Uint64("open_files_limit", limit).
				Msg("max_connections derived from the open-files limit; set max_connections to choose another")
		}
	}
	warnAboutApps(o, &h.log)
	for _, name := range unknownVariables(os.Environ(), o.settings()) {
		h.log.Warn().Str("variable", name).Msg("unknown HERALD_ environment variable ignored (a typo? see herald --help)")
	}
	return h, nil
}

// unknownVariables returns the HERALD_ variables of environ that name no setting.
func unknownVariables(environ []string, settings []setting) []string {
	known := map[string]bool{"HERALD_URL": true} // the subcommands' server address
	for _, s := range settings {
		known[s.env] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "HERALD_") && !known[name] {
			out = append(out, name)
		}
	}
	return out
}

// listen opens the public listener and, if configured, the metrics and debug ones; the second
// value closes those.
func (h *herald) listen() (net.Listener, io.Closer, error) {
	// No TCP keep-alives: Herald probes silent WebSocket clients itself (a Ping after
	// activity_timeout) and idle REST connections end after IdleTimeout, while the kernel's probes
	// would cost three setsockopt calls on every accepted connection.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", h.o.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", h.o.Addr, err)
	}
	if h.cert != nil {
		ln = h.cert.listen(ln)
	}
	var extra closers
	if h.metrics != nil {
		srv, addr, err := h.metrics.listen(h.o.MetricsAddr)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("metrics listener (metrics_addr) on %s: %w", h.o.MetricsAddr, err)
		}
		extra = append(extra, srv)
		h.log.Info().Str("addr", addr.String()).Msg("metrics served on /metrics")
	}
	if h.o.DebugAddr != "" {
		dbg, addr, err := serveDebug(h.o.DebugAddr)
		if err != nil {
			ln.Close()
			extra.Close()
			return nil, nil, fmt.Errorf("debug listener on %s: %w", h.o.DebugAddr, err)
		}
		extra = append(extra, dbg)
		h.log.Info().Str("addr", addr.String()).Msg("profiles served on /debug/pprof/")
	}
	return ln, extra, nil
}

// closers closes each of its members.
type closers []io.Closer

func (c closers) Close() error {
	for _, x := range c {
		_ = x.Close()
	}
	return nil
}

// closeCluster closes the connections to the cluster's Redis, if any.
func (h *herald) closeCluster() {
	if h.cluster != nil {
		h.cluster.Close()
	}
}

// serve answers on ln until ctx ends, then shuts down in order: connections, the cluster, HTTP,
// webhooks. stop
// releases the signals, so a second one kills the process at once.
func (h *herald) serve(ctx context.Context, stop func(), ln net.Listener) int {
	o, log, srv, hooks := h.o, &h.log, h.srv, h.hooks
	httpSrv := o.httpServer(h.withConsole(srv.Handler()), h.httpErrors)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	go releaseAfterDrops(ctx, srv.Connections, memoryCheckInterval, freeOSMemory)
	log.Info().Str("addr", ln.Addr().String()).Bool("tls", h.cert != nil).Int("apps", len(o.apps())).Str("path_prefix", o.PathPrefix).
		Int("webhook_endpoints", o.webhookEndpoints()).Msg("herald listening")

	select {
	case err := <-serveErr:
		log.Error().Err(err).Msg("server failed")
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process at once

	log.Info().Int("connections", srv.Connections()).Msg("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout.duration())
	defer cancel()
	code := 0
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("connections did not all close in time; the rest were cut")
		code = 1
	}
	if h.cluster != nil {
		// The others take over at once, and this node stops reading the webhook outbox. A context of
		// its own: a drain that used up the shutdown timeout must not leave the members behind.
		leaveCtx, cancelLeave := context.WithTimeout(context.Background(), o.ShutdownTimeout.duration())
		defer cancelLeave()
		if err := h.cluster.Leave(leaveCtx); err != nil {
			log.Warn().Err(err).Msg("could not leave the cluster; the other nodes evict this one after the node timeout")
			code = 1
		}
		defer h.closeCluster() // after the webhooks, whose acknowledgements go to Redis
	}
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("in-flight HTTP requests did not finish in time")
		code = 1
	}
	// Last, so the vacated and member_removed events of the connections just closed go out too.
	if err := hooks.Shutdown(shutdownCtx); err != nil {
		log.Warn().Err(err).Msg("webhooks were not all delivered in time")
		code = 1
	}
	stats, wh := srv.Stats(), hooks.Stats()
	dropped := zerolog.Dict()
	for _, r := range webhooks.DropReasons {
		dropped.Int64(string(r), wh.Dropped[r])
	}
	log.Info().Int64("connections_accepted", stats.ConnectionsAccepted.Load()).
		Int64("slow_consumers", stats.SlowConsumers.Load()).
		Int64("webhooks_delivered", wh.Delivered).Int64("webhooks_retried", wh.Retried).
		Dict("webhooks_dropped", dropped).Int64("http_errors", h.httpErrors.Count()).Msg("herald stopped")
	return code
}

// serverConfig turns options into the channels package's Config.
func (o *options) serverConfig(log *zerolog.Logger) (channels.Config, error) {
	cfg := channels.Config{
		CacheTTL:             o.CacheTTL.duration(),
		CacheMaxBytes:        o.CacheMaxBytes,
		WatchlistGrace:       o.WatchlistGrace.duration(),
		HTTPSessionTimeout:   o.HTTPSessionTimeout.duration(),
		HTTPHostname:         o.HTTPHostname,
		PathPrefix:           o.PathPrefix,
		ActivityTimeout:      o.ActivityTimeout.duration(),
		PongTimeout:          o.PongTimeout.duration(),
		MaxQueueBytes:        o.MaxQueueBytes,
		MaxFrameBytes:        o.MaxFrameBytes,
		NoSubscriptionErrors: !o.SubscriptionErrors,
		TrustForwardedProto:  o.TrustForwardedProto,
		Logger:               log,
	}
	cfg.MaxConnections, _ = o.maxConnections(openFilesLimit())
	cfg.TrustedProxies, _ = o.trustedProxies() // validated already
	cfg.TokenKeys = map[string]auth.TokenKey{}
	for _, a := range o.apps() {
		cfg.Apps = append(cfg.Apps, a.app())
		key, err := a.tokenKey()
		if err != nil {
			return cfg, err
		}
		key.MaxLifetime = o.TokenMaxLifetime.duration()
		cfg.TokenKeys[a.ID] = key
	}
	return cfg, nil
}

// webhookEndpoints counts the configured webhook endpoints over all apps.
func (o *options) webhookEndpoints() int {
	n := 0
	for _, a := range o.apps() {
		n += len(a.webhookApp().Endpoints)
	}
	return n
}

// warnAboutApps says loudly when the public default secret is in use, and when default-app settings
// are ignored because the config file lists apps.
func warnAboutApps(o *options, log *zerolog.Logger) {
	for _, a := range o.apps() {
		if a.Secret == defaultAppSecret {
			log.Warn().Str("app_id", a.ID).Msg("app uses the public default secret \"app-secret\": anyone can sign requests for it; set HERALD_APP_SECRET or a config file before exposing Herald")
		}
	}
	if len(o.Apps) > 0 && o.defaultAppCustomized {
		log.Warn().Msg("HERALD_APP_* / --app-* / HERALD_WEBHOOK_URL settings are ignored because the config file lists apps")
	}
}

// newLogger builds the process logger. Errors are logged under "err", the key every Herald log line
// uses (zerolog's default is "error").
func newLogger(o *options, w io.Writer) (zerolog.Logger, error) {
	zerolog.ErrorFieldName = "err"
	level, err := parseLevel(o.LogLevel)
	if err != nil {
		return zerolog.Logger{}, err
	}
	if o.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func parseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug", "info", "warn", "error":
		return zerolog.ParseLevel(s)
	}
	return zerolog.NoLevel, fmt.Errorf("log_level (HERALD_LOG_LEVEL) %q must be debug, info, warn or error", s)
}

// reloadOn reloads what can change without a restart on each SIGHUP, and the TLS certificate when
// its files change, until ctx ends.
func (h *herald) reloadOn(ctx context.Context, hup <-chan os.Signal) {
	if h.cert != nil {
		go h.cert.watch(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			h.log.Info().Msg("SIGHUP: reloading")
			if h.cert != nil {
				h.cert.reload(true)
			}
			h.reloadApps()
		}
	}
}

// reloadApps reads the settings again and puts the new apps and their webhooks in place. A file
// that does not load, or apps that do not validate, change nothing: the reason is logged and the
// running configuration stays. Settings other than the apps need a restart, and are said to.
func (h *herald) reloadApps() {
	o, err := h.reread()
	if err != nil {
		h.log.Error().Err(err).Msg("reload refused: the configuration stays as it was")
		return
	}
	cfg, err := o.serverConfig(&h.log)
	if err != nil {
		h.log.Error().Err(err).Msg("reload refused: the configuration stays as it was")
		return
	}
	hookApps := o.webhookConfig(&h.log).Apps
	if err := h.hooks.CheckApps(hookApps); err != nil {
		h.log.Error().Err(err).Msg("reload refused: the configuration stays as it was")
		return
	}
	changed, removed, err := h.srv.Reload(cfg.Apps, cfg.TokenKeys)
	if err != nil {
		h.log.Error().Err(err).Msg("reload refused: the configuration stays as it was")
		return
	}
	if err := h.hooks.Reload(hookApps); err != nil { // checked above: only a shutdown under way
		h.log.Error().Err(err).Msg("webhooks not reloaded")
	}
	if h.cluster != nil {
		var ids []string
		for _, a := range o.apps() {
			ids = append(ids, a.ID)
		}
		h.cluster.SetApps(ids)
	}
	if !o.sameExceptApps(h.o) {
		h.log.Warn().Msg("reload: only apps and their webhooks change without a restart; the other settings changed in the file need one")
	}
	h.log.Info().Int("apps", len(cfg.Apps)).Int("changed", changed).Int("removed", removed).Msg("configuration reloaded")
}
