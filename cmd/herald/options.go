package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// options is everything Herald can be told, from (lowest to highest precedence) built-in defaults,
// the JSON config file, environment variables and flags.
type options struct {
	Addr                string       `json:"addr"`
	DebugAddr           string       `json:"debug_addr"`
	MetricsAddr         string       `json:"metrics_addr"`
	TLSCert             string       `json:"tls_cert"`
	TLSKey              string       `json:"tls_key"`
	TrustedProxies      []string     `json:"trusted_proxies"`
	PathPrefix          string       `json:"path_prefix"`
	ActivityTimeout     seconds      `json:"activity_timeout"`
	PongTimeout         seconds      `json:"pong_timeout"`
	ShutdownTimeout     seconds      `json:"shutdown_timeout"`
	MaxConnections      *int         `json:"max_connections"` // nil: derived from the open-files limit
	MaxQueueBytes       int          `json:"max_queue_bytes"`
	MaxFrameBytes       int          `json:"max_frame_bytes"`
	MaxHeaderBytes      int          `json:"max_header_bytes"`
	ReadHeaderTimeout   seconds      `json:"read_header_timeout"`
	SubscriptionErrors  bool         `json:"subscription_errors"`
	TrustForwardedProto bool         `json:"trust_forwarded_proto"`
	LogFormat           string       `json:"log_format"`
	LogLevel            string       `json:"log_level"`
	WebhookDelay        seconds      `json:"webhook_delay"`        // 0: removals at once
	WebhookTimeout      seconds      `json:"webhook_timeout"`      // per attempt
	WebhookRetryFor     seconds      `json:"webhook_retry_for"`    // 0: no retries
	CacheTTL            seconds      `json:"cache_ttl"`            // how long a cache channel keeps its event
	CacheMaxBytes       int          `json:"cache_max_bytes"`      // the cache channels' events together
	TokenMaxLifetime    seconds      `json:"token_max_lifetime"`   // how far a token's exp may lie after its iat
	WatchlistGrace      seconds      `json:"watchlist_grace"`      // before a departed user is offline
	HTTPSessionTimeout  seconds      `json:"http_session_timeout"` // an HTTP session without a receiving request this long is gone
	HTTPHostname        string       `json:"http_hostname"`        // sent to HTTP sessions: later requests go to this node
	RedisURL            string       `json:"redis_url"`            // empty: one node, no Redis
	RedisPrefix         string       `json:"redis_prefix"`         // namespaces the cluster's keys
	NodeID              string       `json:"node_id"`              // empty: host name and port
	ClusterNodeTimeout  seconds      `json:"cluster_node_timeout"` // silence before a node is evicted
	Console             bool         `json:"console"`              // the debug console at /console
	ConsoleToken        string       `json:"console_token"`        // signs a person in to the console for every app
	Apps                []appOptions `json:"apps"`
	defaultAppKeys
	defaultApp           appOptions
	configPath           string
	defaultAppCustomized bool
}

// defaultAppKeys are the default app's settings as the config file spells them, which it applies
// through their flags (see applyDefaultAppKeys). A file that lists apps needs none of them.
type defaultAppKeys struct {
	AppID                   json.RawMessage `json:"app_id"`
	AppKey                  json.RawMessage `json:"app_key"`
	AppSecret               json.RawMessage `json:"app_secret"`
	AppClientEvents         json.RawMessage `json:"app_client_events"`
	AppMaxConnections       json.RawMessage `json:"app_max_connections"`
	AppSubscriptionCount    json.RawMessage `json:"app_subscription_count"`
	AppAuthorizationTimeout json.RawMessage `json:"app_authorization_timeout"`
	WebhookURL              json.RawMessage `json:"webhook_url"`
}

// appOptions is one app as the config file spells it.
type appOptions struct {
	ID             string `json:"id"`
	Key            string `json:"key"`
	Secret         string `json:"secret"`
	Enabled        *bool  `json:"enabled"` // absent: true
	ClientEvents   bool   `json:"client_events"`
	RequireTLS     bool   `json:"require_tls"`
	MaxConnections int    `json:"max_connections"`
	// SubscriptionCount sends pusher_internal:subscription_count (Pusher's opt-in feature).
	SubscriptionCount bool `json:"subscription_count"`
	// AuthorizationTimeout closes connections that neither sign in nor join a private or presence
	// channel within this many seconds (4009); 0: off.
	AuthorizationTimeout seconds `json:"authorization_timeout"`
	// TokenSecret verifies HS256 tokens of the token authorization endpoints instead of the app secret;
	// TokenPublicKeyFile (a PEM file) switches them to RS256 or ES256. At most one of the two.
	TokenSecret        string `json:"token_secret"`
	TokenPublicKeyFile string `json:"token_public_key_file"`
	// AllowedOrigins, PublishesPerSecond and ConnectionsPerSecondPerIP: see pusher.App.
	AllowedOrigins            []string `json:"allowed_origins"`
	PublishesPerSecond        int      `json:"publishes_per_second"`
	ConnectionsPerSecondPerIP int      `json:"connections_per_second_per_ip"`
	pusher.Limits
	Webhooks        []webhookOptions `json:"webhooks"`
	WebhookBatching batchingOptions  `json:"webhook_batching"`
	// webhookURLs is HERALD_WEBHOOK_URL: comma-separated URLs receiving every event of the default app.
	webhookURLs string
}

// The embedded default app: it lets `make run` work with no configuration at all. Its secret is public,
// so Herald warns loudly whenever it is in use.
const (
	defaultAppID     = "app-id"
	defaultAppKey    = "app-key"
	defaultAppSecret = "app-secret"
)

func defaultOptions() options {
	return options{
		Addr:               "0.0.0.0:6001",
		ActivityTimeout:    120,
		PongTimeout:        30,
		ShutdownTimeout:    10,
		MaxHeaderBytes:     defaultMaxHeaderBytes,
		ReadHeaderTimeout:  10,
		SubscriptionErrors: true,
		WebhookDelay:       3,
		WebhookTimeout:     10,
		WebhookRetryFor:    300,
		CacheTTL:           1800,
		WatchlistGrace:     3,
		HTTPSessionTimeout: 5,
		TokenMaxLifetime:   seconds(auth.DefaultTokenMaxLifetime / time.Second),
		RedisPrefix:        "herald",
		ClusterNodeTimeout: 15,
		LogFormat:          "json",
		LogLevel:           "info",
		defaultApp: appOptions{
			ID: defaultAppID, Key: defaultAppKey, Secret: defaultAppSecret, ClientEvents: true,
		},
	}
}

// maxFrameBytes bounds max_frame_bytes: a Pusher message is at most a few tens of kilobytes (10 KB of
// event data by default), and a frame limit is memory every connection may claim.
const maxFrameBytes = 16 << 20

// setting is one option reachable by flag, environment variable and config file key (the flag's
// name with underscores).
type setting struct {
	flag, env, usage string
	value            flag.Value
}

// required reports whether the setting given empty is an error rather than unset: an empty
// default-app id, key or secret would otherwise fall back to the public default app.
func (s setting) required() bool {
	return s.flag == "app-id" || s.flag == "app-key" || s.flag == "app-secret"
}

func (o *options) settings() []setting {
	return []setting{
		{"config", "HERALD_CONFIG", "JSON config file (apps and any setting below)", stringVar(&o.configPath)},
		{"addr", "HERALD_ADDR", "listen address", stringVar(&o.Addr)},
		{"tls-cert", "HERALD_TLS_CERT", "serve TLS (wss:// and https://) with this PEM certificate chain; reloaded on SIGHUP and when the file changes", stringVar(&o.TLSCert)},
		{"tls-key", "HERALD_TLS_KEY", "the PEM private key of --tls-cert", stringVar(&o.TLSKey)},
		{"trusted-proxies", "HERALD_TRUSTED_PROXIES", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client (for connections_per_second_per_ip)", listVar(&o.TrustedProxies)},
		{"metrics-addr", "HERALD_METRICS_ADDR", "serve Prometheus metrics on /metrics at this address, e.g. 127.0.0.1:9601 (empty: off)", stringVar(&o.MetricsAddr)},
		{"debug-addr", "HERALD_DEBUG_ADDR", "serve Go's pprof profiles on this private address, e.g. 127.0.0.1:6060 (empty: off)", stringVar(&o.DebugAddr)},
		{"path-prefix", "HERALD_PATH_PREFIX", "also serve every route under this prefix, e.g. /admin/wss", stringVar(&o.PathPrefix)},
		{"activity-timeout", "HERALD_ACTIVITY_TIMEOUT", "seconds of client silence before a Ping probe", secondsVar(&o.ActivityTimeout)},
		{"pong-timeout", "HERALD_PONG_TIMEOUT", "seconds a probed client has to answer before close 4201", secondsVar(&o.PongTimeout)},
		{"shutdown-timeout", "HERALD_SHUTDOWN_TIMEOUT", "seconds a graceful shutdown may take", secondsVar(&o.ShutdownTimeout)},
		{"max-connections", "HERALD_MAX_CONNECTIONS", "connections this node accepts, 0 = unlimited (default: the open-files limit less max(256, 10%))", optionalIntVar(&o.MaxConnections)},
		{"max-queue-bytes", "HERALD_MAX_QUEUE_BYTES", "backlog per client before it is cut off as slow (4100), 0 = 1 MiB", intVar(&o.MaxQueueBytes)},
		{"max-frame-bytes", "HERALD_MAX_FRAME_BYTES", "largest inbound frame, 0 = 64 KiB", intVar(&o.MaxFrameBytes)},
		{"max-header-bytes", "HERALD_MAX_HEADER_BYTES", "largest HTTP request line and headers; larger requests get 431", intVar(&o.MaxHeaderBytes)},
		{"read-header-timeout", "HERALD_READ_HEADER_TIMEOUT", "seconds a client has to send its HTTP request headers", secondsVar(&o.ReadHeaderTimeout)},
		{"subscription-errors", "HERALD_SUBSCRIPTION_ERRORS", "send pusher:subscription_error on failed subscriptions", boolVar(&o.SubscriptionErrors)},
		{"trust-forwarded-proto", "HERALD_TRUST_FORWARDED_PROTO", "treat X-Forwarded-Proto: https as TLS", boolVar(&o.TrustForwardedProto)},
		{"log-format", "HERALD_LOG_FORMAT", "json or console", stringVar(&o.LogFormat)},
		{"log-level", "HERALD_LOG_LEVEL", "debug, info, warn or error", stringVar(&o.LogLevel)},
		{"webhook-delay", "HERALD_WEBHOOK_DELAY", "seconds channel_vacated and member_removed wait for the channel or member to come back, 0 = none", secondsVar(&o.WebhookDelay)},
		{"webhook-timeout", "HERALD_WEBHOOK_TIMEOUT", "seconds one webhook attempt may take", secondsVar(&o.WebhookTimeout)},
		{"webhook-retry-for", "HERALD_WEBHOOK_RETRY_FOR", "seconds a failing webhook is retried before it is dropped, 0 = no retries", secondsVar(&o.WebhookRetryFor)},
		{"cache-ttl", "HERALD_CACHE_TTL", "seconds a cache channel keeps its last event", secondsVar(&o.CacheTTL)},
		{"cache-max-bytes", "HERALD_CACHE_MAX_BYTES", "bytes the cache channels' last events may take together, 0 = 64 MiB", intVar(&o.CacheMaxBytes)},
		{"http-session-timeout", "HERALD_HTTP_SESSION_TIMEOUT", "seconds an HTTP fallback session (xhr_streaming, xhr_polling) may go without a receiving request before its client counts as gone", secondsVar(&o.HTTPSessionTimeout)},
		{"http-hostname", "HERALD_HTTP_HOSTNAME", "a host name that reaches this node alone: HTTP fallback sessions send their later requests there (a cluster behind a load balancer without affinity)", stringVar(&o.HTTPHostname)},
		{"watchlist-grace", "HERALD_WATCHLIST_GRACE", "seconds before a watched user who left is reported offline", secondsVar(&o.WatchlistGrace)},
		{"token-max-lifetime", "HERALD_TOKEN_MAX_LIFETIME", "seconds a token of the token authorization endpoints may live (exp after iat)", secondsVar(&o.TokenMaxLifetime)},
		{"redis-url", "HERALD_REDIS_URL", "run as one node of a cluster on this Redis, redis://[user:password@]host:port[/db] or rediss:// (empty: one node alone)", stringVar(&o.RedisURL)},
		{"redis-prefix", "HERALD_REDIS_PREFIX", "prefix of the cluster's Redis keys and channels; clusters sharing a Redis need different ones", stringVar(&o.RedisPrefix)},
		{"node-id", "HERALD_NODE_ID", "this node's name in the cluster, unique and stable across restarts (default: host name and port)", stringVar(&o.NodeID)},
		{"cluster-node-timeout", "HERALD_CLUSTER_NODE_TIMEOUT", "seconds a node may miss heartbeats before the others evict its sockets", secondsVar(&o.ClusterNodeTimeout)},
		{"console", "HERALD_CONSOLE", "serve the debug console at /console: sign in with an app's id and secret, or the console token", boolVar(&o.Console)},
		{"console-token", "HERALD_CONSOLE_TOKEN", "a token that signs a person in to the debug console for every app (empty: app id and secret only)", stringVar(&o.ConsoleToken)},
		{"app-id", "HERALD_APP_ID", "default app: id (ignored when the config file lists apps)", o.appVar(stringVar(&o.defaultApp.ID))},
		{"app-key", "HERALD_APP_KEY", "default app: key", o.appVar(stringVar(&o.defaultApp.Key))},
		{"app-secret", "HERALD_APP_SECRET", "default app: secret", o.appVar(stringVar(&o.defaultApp.Secret))},
		{"app-client-events", "HERALD_APP_CLIENT_EVENTS", "default app: allow client events", o.appVar(boolVar(&o.defaultApp.ClientEvents))},
		{"app-max-connections", "HERALD_APP_MAX_CONNECTIONS", "default app: connection quota (4004), 0 = unlimited", o.appVar(intVar(&o.defaultApp.MaxConnections))},
		{"app-subscription-count", "HERALD_APP_SUBSCRIPTION_COUNT", "default app: send pusher_internal:subscription_count", o.appVar(boolVar(&o.defaultApp.SubscriptionCount))},
		{"app-authorization-timeout", "HERALD_APP_AUTHORIZATION_TIMEOUT", "default app: seconds a connection has to sign in or join a private channel (4009), 0 = off", o.appVar(secondsVar(&o.defaultApp.AuthorizationTimeout))},
		{"webhook-url", "HERALD_WEBHOOK_URL", "default app: comma-separated webhook URLs receiving every event type", o.appVar(stringVar(&o.defaultApp.webhookURLs))},
	}
}

// loadOptions reads flags (args), environment (lookup) and the config file they name. Every error
// names the flag, variable or config field at fault.
func loadOptions(args []string, lookup func(string) (string, bool), usageOut io.Writer) (*options, error) {
	o := defaultOptions()
	settings := o.settings()
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	for _, s := range settings {
		fs.Var(s.value, s.flag, s.usage+" (env "+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage: herald [flags]         serve\n       herald COMMAND [flags] (herald COMMAND --help for its flags)\n\n")
		fmt.Fprintf(usageOut, "Herald is a Pusher-compatible channels server. Flags override environment variables,\nwhich override the config file.\n\nCommands:\n")
		for _, c := range commandUsages {
			fmt.Fprintf(usageOut, "  %-13s %s\n", c[0], c[1])
		}
		fmt.Fprintf(usageOut, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are flags: see herald --help)", fs.Arg(0))
	}
	fromFlags := map[string]string{}
	fs.Visit(func(f *flag.Flag) { fromFlags[f.Name] = f.Value.String() })

	// Rebuild in precedence order: defaults, file, environment, flags.
	path := o.configPath
	if v, ok := lookup("HERALD_CONFIG"); ok && fromFlags["config"] == "" {
		path = v
	}
	o = defaultOptions()
	if path != "" {
		if err := o.readFile(path, settings); err != nil {
			return nil, err
		}
	}
	for _, s := range settings {
		v, ok := lookup(s.env)
		if ok && v == "" && s.required() {
			return nil, fmt.Errorf("%s is set but empty: give it a value, or unset it", s.env)
		}
		if ok && v != "" {
			if err := s.value.Set(v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
	}
	for _, s := range settings {
		if v, ok := fromFlags[s.flag]; ok {
			if v == "" && s.required() {
				return nil, fmt.Errorf("--%s is empty", s.flag)
			}
			if err := s.value.Set(v); err != nil {
				return nil, fmt.Errorf("--%s=%q: %w", s.flag, v, err)
			}
		}
	}
	o.configPath = path
	return &o, o.validate()
}

// readFile applies a JSON config file; unknown fields are errors, so a misspelt setting is not
// silently ignored.
func (o *options) readFile(path string, settings []setting) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("config %s: %w", path, describeJSONError(b, err))
	}
	if err := o.applyDefaultAppKeys(settings); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// applyDefaultAppKeys sets the default app's settings the file gave (app_id, webhook_url, …)
// through the flag of the same name, so that the file, the environment and the flags read them
// alike.
func (o *options) applyDefaultAppKeys(settings []setting) error {
	byKey := map[string]setting{}
	for _, s := range settings {
		byKey[strings.ReplaceAll(s.flag, "-", "_")] = s
	}
	v := reflect.ValueOf(o.defaultAppKeys)
	for i := range v.NumField() {
		raw := v.Field(i).Interface().(json.RawMessage)
		if raw == nil {
			continue
		}
		key := strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0]
		text := string(raw)
		var str string
		if json.Unmarshal(raw, &str) == nil {
			text = str
		}
		s := byKey[key]
		if text == "" && s.required() {
			return fmt.Errorf("field %q is empty", key)
		}
		if err := s.value.Set(text); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

// describeJSONError adds the line number to a JSON syntax or type error.
func describeJSONError(b []byte, err error) error {
	var offset int64 = -1
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typ):
		want := typ.Type.String()
		if typ.Type == reflect.TypeFor[seconds]() {
			want = "a number of seconds"
		}
		return fmt.Errorf("line %d: field %q must be %s, not JSON %s", lineOf(b, typ.Offset), typ.Field, want, typ.Value)
	}
	if offset >= 0 {
		return fmt.Errorf("line %d: %w", lineOf(b, offset), err)
	}
	return err
}

func lineOf(b []byte, offset int64) int {
	return bytes.Count(b[:min(int(offset), len(b))], []byte("\n")) + 1
}

// validate names every setting Herald cannot start with, one per line.
func (o *options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Addr == "" {
		bad("addr (HERALD_ADDR) is empty")
	}
	if o.MaxFrameBytes > maxFrameBytes {
		bad("max_frame_bytes (HERALD_MAX_FRAME_BYTES) %d is over the maximum of %d (16 MiB)", o.MaxFrameBytes, maxFrameBytes)
	}
	if o.MaxHeaderBytes < minMaxHeaderBytes || o.MaxHeaderBytes > maxMaxHeaderBytes {
		bad("max_header_bytes (HERALD_MAX_HEADER_BYTES) %d must be between %d and %d", o.MaxHeaderBytes, minMaxHeaderBytes, maxMaxHeaderBytes)
	}
	if o.PathPrefix != "" && (!strings.HasPrefix(o.PathPrefix, "/") || strings.HasSuffix(o.PathPrefix, "/")) {
		bad("path_prefix (HERALD_PATH_PREFIX) %q must start with / and not end with /", o.PathPrefix)
	}
	if o.LogFormat != "json" && o.LogFormat != "console" {
		bad("log_format (HERALD_LOG_FORMAT) %q must be json or console", o.LogFormat)
	}
	maxConnections := 0
	if o.MaxConnections != nil {
		maxConnections = *o.MaxConnections
	}
	for _, l := range []struct {
		field string
		value int
	}{
		{"max_connections", maxConnections}, {"max_queue_bytes", o.MaxQueueBytes},
		{"max_frame_bytes", o.MaxFrameBytes}, {"cache_max_bytes", o.CacheMaxBytes},
	} {
		if l.value < 0 {
			bad("%s (HERALD_%s) %d must not be negative", l.field, strings.ToUpper(l.field), l.value)
		}
	}
	errs = append(errs, o.validateDurations(), o.validateCluster(), o.validateOperations())
	if _, err := parseLevel(o.LogLevel); err != nil {
		errs = append(errs, err)
	}
	for i, a := range o.apps() {
		app := a.app()
		if err := app.Validate(); err != nil {
			bad("apps[%d]: %w", i, err)
		}
		if _, err := a.tokenKey(); err != nil {
			bad("apps[%d]: %w", i, err)
		}
		if err := a.validateWebhooks(); err != nil {
			if len(o.Apps) == 0 {
				errs = append(errs, err)
			} else {
				bad("apps[%d].%w", i, err)
			}
		}
	}
	return errors.Join(errs...)
}

// validateDurations refuses a negative duration, and a zero one where zero means nothing sensible.
// The message names the config field and its environment variable.
func (o *options) validateDurations() error {
	for _, d := range []struct {
		field  string
		value  seconds
		zeroOK bool // 0 switches the feature off
	}{
		{"activity_timeout", o.ActivityTimeout, false},
		{"pong_timeout", o.PongTimeout, false},
		{"shutdown_timeout", o.ShutdownTimeout, false},
		{"read_header_timeout", o.ReadHeaderTimeout, false},
		{"webhook_delay", o.WebhookDelay, true},
		{"webhook_timeout", o.WebhookTimeout, false},
		{"webhook_retry_for", o.WebhookRetryFor, true},
		{"cache_ttl", o.CacheTTL, false},
		{"watchlist_grace", o.WatchlistGrace, false},
		{"http_session_timeout", o.HTTPSessionTimeout, false},
		{"token_max_lifetime", o.TokenMaxLifetime, false},
		{"cluster_node_timeout", o.ClusterNodeTimeout, false},
	} {
		env := "HERALD_" + strings.ToUpper(d.field)
		switch v := d.value.duration(); {
		case v < 0:
			return fmt.Errorf("%s (%s) must not be negative", d.field, env)
		case v == 0 && !d.zeroOK:
			return fmt.Errorf("%s (%s) must be a positive number of seconds", d.field, env)
		}
	}
	return nil
}

// apps returns the configured apps: the config file's, or else the default app.
func (o *options) apps() []appOptions {
	if len(o.Apps) > 0 {
		return o.Apps
	}
	return []appOptions{o.defaultApp}
}

func (a appOptions) app() pusher.App {
	return pusher.App{
		ID: a.ID, Key: a.Key, Secret: a.Secret,
		Enabled:                   a.Enabled == nil || *a.Enabled,
		ClientEvents:              a.ClientEvents,
		RequireTLS:                a.RequireTLS,
		MaxConnections:            a.MaxConnections,
		SubscriptionCount:         a.SubscriptionCount,
		AuthorizationTimeout:      a.AuthorizationTimeout.duration(),
		AllowedOrigins:            a.AllowedOrigins,
		PublishesPerSecond:        a.PublishesPerSecond,
		ConnectionsPerSecondPerIP: a.ConnectionsPerSecondPerIP,
		Limits:                    a.Limits,
	}
}

// tokenKey is the app's key for the token authorization endpoints: HS256 over the app secret unless
// the app names a token_secret or a token_public_key_file. The public key file is read and parsed
// here, so a bad one stops Herald at start.
func (a appOptions) tokenKey() (auth.TokenKey, error) {
	switch {
	case a.TokenSecret != "" && a.TokenPublicKeyFile != "":
		return auth.TokenKey{}, fmt.Errorf("app %q: set token_secret or token_public_key_file, not both", a.ID)
	case a.TokenSecret != "":
		return auth.TokenKey{HMACSecret: []byte(a.TokenSecret)}, nil
	case a.TokenPublicKeyFile != "":
		pemBytes, err := os.ReadFile(a.TokenPublicKeyFile)
		if err != nil {
			return auth.TokenKey{}, fmt.Errorf("app %q: token_public_key_file: %w", a.ID, err)
		}
		pub, err := auth.ParsePublicKeyPEM(pemBytes)
		if err != nil {
			return auth.TokenKey{}, fmt.Errorf("app %q: token_public_key_file %s: %w", a.ID, a.TokenPublicKeyFile, err)
		}
		k := auth.TokenKey{PublicKey: pub}
		if err := k.Validate(); err != nil {
			return auth.TokenKey{}, fmt.Errorf("app %q: token_public_key_file %s: %w", a.ID, a.TokenPublicKeyFile, err)
		}
		return k, nil
	}
	return auth.TokenKey{HMACSecret: []byte(a.Secret)}, nil
}

// validateOperations checks the operational listeners' settings.
func (o *options) validateOperations() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errTLSHalf
	}
	if _, err := o.trustedProxies(); err != nil {
		return err
	}
	if o.ConsoleToken != "" && len(o.ConsoleToken) < 16 {
		return errors.New("console_token (HERALD_CONSOLE_TOKEN) must be at least 16 characters: it opens every app's console")
	}
	if o.MetricsAddr != "" && o.MetricsAddr == o.Addr && !strings.HasSuffix(o.Addr, ":0") {
		return fmt.Errorf("metrics_addr (HERALD_METRICS_ADDR) %q must differ from addr: metrics belong on a private listener", o.MetricsAddr)
	}
	return nil
}

// trustedProxies parses trusted_proxies: addresses (a single host each) or CIDR prefixes.
func (o *options) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range o.TrustedProxies {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("trusted_proxies (HERALD_TRUSTED_PROXIES): %q is neither an address nor a CIDR prefix", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// sameExceptApps reports whether o and p agree on every setting but the apps.
func (o *options) sameExceptApps(p *options) bool {
	a, b := *o, *p
	a.Apps, b.Apps = nil, nil
	a.defaultApp, b.defaultApp = appOptions{}, appOptions{}
	a.defaultAppKeys, b.defaultAppKeys = defaultAppKeys{}, defaultAppKeys{}
	a.defaultAppCustomized, b.defaultAppCustomized = false, false
	return reflect.DeepEqual(a, b)
}
