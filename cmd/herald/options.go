package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herald-rt/herald/pusher"
	"github.com/herald-rt/herald/webhooks"
)

// options is everything Herald can be told, from (lowest to highest precedence) built-in defaults,
// the JSON config file, environment variables and flags.
type options struct {
	Addr                 string       `json:"addr"`
	PathPrefix           string       `json:"path_prefix"`
	ActivityTimeout      int          `json:"activity_timeout"`
	PongTimeout          int          `json:"pong_timeout"`
	ShutdownTimeout      int          `json:"shutdown_timeout"`
	MaxConnections       int          `json:"max_connections"`
	MaxQueueBytes        int          `json:"max_queue_bytes"`
	MaxFrameBytes        int          `json:"max_frame_bytes"`
	SubscriptionErrors   bool         `json:"subscription_errors"`
	TrustForwardedProto  bool         `json:"trust_forwarded_proto"`
	LogFormat            string       `json:"log_format"`
	LogLevel             string       `json:"log_level"`
	WebhookDelay         float64      `json:"webhook_delay"`     // seconds; 0: removals at once
	WebhookTimeout       float64      `json:"webhook_timeout"`   // seconds per attempt
	WebhookRetryFor      float64      `json:"webhook_retry_for"` // seconds; 0: no retries
	Apps                 []appOptions `json:"apps"`
	defaultApp           appOptions
	configPath           string
	defaultAppCustomized bool
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
	pusher.Limits
	Webhooks        []webhookOptions `json:"webhooks"`
	WebhookBatching batchingOptions  `json:"webhook_batching"`
	// webhookURLs is HERALD_WEBHOOK_URL: comma-separated URLs receiving every event of the default app.
	webhookURLs string
}

// webhookOptions is one webhook endpoint as the config file spells it (soketi's shape).
type webhookOptions struct {
	URL        string            `json:"url"`
	EventTypes []string          `json:"event_types"` // empty: all
	Filter     webhookFilter     `json:"filter"`
	Headers    map[string]string `json:"headers"`
	Naming     string            `json:"naming"` // "pusher" (default) or "webman"
}

type webhookFilter struct {
	ChannelNameStartsWith string `json:"channel_name_starts_with"`
	ChannelNameEndsWith   string `json:"channel_name_ends_with"`
}

// batchingOptions is an app's webhook_batching.
type batchingOptions struct {
	Enabled   bool `json:"enabled"`
	WindowMs  int  `json:"window_ms"`  // 0: 50
	MaxEvents int  `json:"max_events"` // 0: 50
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
		SubscriptionErrors: true,
		WebhookDelay:       3,
		WebhookTimeout:     10,
		WebhookRetryFor:    300,
		LogFormat:          "json",
		LogLevel:           "info",
		defaultApp: appOptions{
			ID: defaultAppID, Key: defaultAppKey, Secret: defaultAppSecret, ClientEvents: true,
		},
	}
}

// setting is one option reachable by flag and environment variable.
type setting struct {
	flag, env, usage string
	value            flag.Value
}

func (o *options) settings() []setting {
	return []setting{
		{"config", "HERALD_CONFIG", "JSON config file (apps and any setting below)", stringVar(&o.configPath)},
		{"addr", "HERALD_ADDR", "listen address", stringVar(&o.Addr)},
		{"path-prefix", "HERALD_PATH_PREFIX", "also serve every route under this prefix, e.g. /admin/wss", stringVar(&o.PathPrefix)},
		{"activity-timeout", "HERALD_ACTIVITY_TIMEOUT", "seconds of client silence before a Ping probe", intVar(&o.ActivityTimeout)},
		{"pong-timeout", "HERALD_PONG_TIMEOUT", "seconds a probed client has to answer before close 4201", intVar(&o.PongTimeout)},
		{"shutdown-timeout", "HERALD_SHUTDOWN_TIMEOUT", "seconds a graceful shutdown may take", intVar(&o.ShutdownTimeout)},
		{"max-connections", "HERALD_MAX_CONNECTIONS", "connections this node accepts, 0 = unlimited", intVar(&o.MaxConnections)},
		{"max-queue-bytes", "HERALD_MAX_QUEUE_BYTES", "backlog per client before it is cut off as slow (4100), 0 = 1 MiB", intVar(&o.MaxQueueBytes)},
		{"max-frame-bytes", "HERALD_MAX_FRAME_BYTES", "largest inbound frame, 0 = 64 KiB", intVar(&o.MaxFrameBytes)},
		{"subscription-errors", "HERALD_SUBSCRIPTION_ERRORS", "send pusher:subscription_error on failed subscriptions", boolVar(&o.SubscriptionErrors)},
		{"trust-forwarded-proto", "HERALD_TRUST_FORWARDED_PROTO", "treat X-Forwarded-Proto: https as TLS", boolVar(&o.TrustForwardedProto)},
		{"log-format", "HERALD_LOG_FORMAT", "json or console", stringVar(&o.LogFormat)},
		{"log-level", "HERALD_LOG_LEVEL", "debug, info, warn or error", stringVar(&o.LogLevel)},
		{"webhook-delay", "HERALD_WEBHOOK_DELAY", "seconds channel_vacated and member_removed wait for the channel or member to come back, 0 = none", secondsVar(&o.WebhookDelay)},
		{"webhook-timeout", "HERALD_WEBHOOK_TIMEOUT", "seconds one webhook attempt may take", secondsVar(&o.WebhookTimeout)},
		{"webhook-retry-for", "HERALD_WEBHOOK_RETRY_FOR", "seconds a failing webhook is retried before it is dropped, 0 = no retries", secondsVar(&o.WebhookRetryFor)},
		{"app-id", "HERALD_APP_ID", "default app: id (ignored when the config file lists apps)", o.appVar(stringVar(&o.defaultApp.ID))},
		{"app-key", "HERALD_APP_KEY", "default app: key", o.appVar(stringVar(&o.defaultApp.Key))},
		{"app-secret", "HERALD_APP_SECRET", "default app: secret", o.appVar(stringVar(&o.defaultApp.Secret))},
		{"app-client-events", "HERALD_APP_CLIENT_EVENTS", "default app: allow client events", o.appVar(boolVar(&o.defaultApp.ClientEvents))},
		{"app-max-connections", "HERALD_APP_MAX_CONNECTIONS", "default app: connection quota (4004), 0 = unlimited", o.appVar(intVar(&o.defaultApp.MaxConnections))},
		{"app-subscription-count", "HERALD_APP_SUBSCRIPTION_COUNT", "default app: send pusher_internal:subscription_count", o.appVar(boolVar(&o.defaultApp.SubscriptionCount))},
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
		fmt.Fprintf(usageOut, "Usage: herald [flags]\n\nHerald is a Pusher-compatible channels server. Flags override environment variables,\nwhich override the config file.\n\n")
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
		if err := o.readFile(path); err != nil {
			return nil, err
		}
	}
	for _, s := range settings {
		if v, ok := lookup(s.env); ok && v != "" {
			if err := s.value.Set(v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
	}
	for _, s := range settings {
		if v, ok := fromFlags[s.flag]; ok {
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
func (o *options) readFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("config %s: %w", path, describeJSONError(b, err))
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
		return fmt.Errorf("line %d: field %q must be %s, not JSON %s", lineOf(b, typ.Offset), typ.Field, typ.Type, typ.Value)
	}
	if offset >= 0 {
		return fmt.Errorf("line %d: %w", lineOf(b, offset), err)
	}
	return err
}

func lineOf(b []byte, offset int64) int {
	return bytes.Count(b[:min(int(offset), len(b))], []byte("\n")) + 1
}

func (o *options) validate() error {
	switch {
	case o.Addr == "":
		return errors.New("addr (HERALD_ADDR) is empty")
	case o.ActivityTimeout <= 0:
		return errors.New("activity_timeout (HERALD_ACTIVITY_TIMEOUT) must be a positive number of seconds")
	case o.PongTimeout <= 0:
		return errors.New("pong_timeout (HERALD_PONG_TIMEOUT) must be a positive number of seconds")
	case o.ShutdownTimeout <= 0:
		return errors.New("shutdown_timeout (HERALD_SHUTDOWN_TIMEOUT) must be a positive number of seconds")
	case o.MaxConnections < 0 || o.MaxQueueBytes < 0 || o.MaxFrameBytes < 0:
		return errors.New("max_connections, max_queue_bytes and max_frame_bytes must not be negative")
	case o.PathPrefix != "" && (!strings.HasPrefix(o.PathPrefix, "/") || strings.HasSuffix(o.PathPrefix, "/")):
		return fmt.Errorf("path_prefix (HERALD_PATH_PREFIX) %q must start with / and not end with /", o.PathPrefix)
	case o.LogFormat != "json" && o.LogFormat != "console":
		return fmt.Errorf("log_format (HERALD_LOG_FORMAT) %q must be json or console", o.LogFormat)
	case o.WebhookDelay < 0:
		return errors.New("webhook_delay (HERALD_WEBHOOK_DELAY) must not be negative")
	case o.WebhookTimeout <= 0:
		return errors.New("webhook_timeout (HERALD_WEBHOOK_TIMEOUT) must be a positive number of seconds")
	case o.WebhookRetryFor < 0:
		return errors.New("webhook_retry_for (HERALD_WEBHOOK_RETRY_FOR) must not be negative")
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return err
	}
	for i, a := range o.apps() {
		app := a.app()
		if err := app.Validate(); err != nil {
			return fmt.Errorf("apps[%d]: %w", i, err)
		}
		if err := a.validateWebhooks(); err != nil {
			if len(o.Apps) == 0 {
				return err
			}
			return fmt.Errorf("apps[%d].%w", i, err)
		}
	}
	return nil
}

// validateWebhooks names the field at fault: webhooks[1].url, webhook_batching.window_ms, or
// webhook_url for HERALD_WEBHOOK_URL.
func (a appOptions) validateWebhooks() error {
	for j, w := range a.Webhooks {
		if err := w.endpoint().Validate(); err != nil {
			return fmt.Errorf("webhooks[%d].%w", j, err)
		}
	}
	for _, u := range splitURLs(a.webhookURLs) {
		if err := (webhooks.Endpoint{URL: u}).Validate(); err != nil {
			return fmt.Errorf("webhook_url (HERALD_WEBHOOK_URL): %w", err)
		}
	}
	switch b := a.WebhookBatching; {
	case b.WindowMs < 0:
		return errors.New("webhook_batching.window_ms must not be negative")
	case b.MaxEvents < 0:
		return errors.New("webhook_batching.max_events must not be negative")
	}
	return nil
}

// webhookApp is the app's webhook setup for the webhooks package.
func (a appOptions) webhookApp() webhooks.App {
	w := webhooks.App{
		ID: a.ID, Key: a.Key, Secret: a.Secret,
		Batching: webhooks.Batching{
			Enabled:   a.WebhookBatching.Enabled,
			Window:    time.Duration(a.WebhookBatching.WindowMs) * time.Millisecond,
			MaxEvents: a.WebhookBatching.MaxEvents,
		},
	}
	for _, o := range a.Webhooks {
		w.Endpoints = append(w.Endpoints, o.endpoint())
	}
	for _, u := range splitURLs(a.webhookURLs) {
		w.Endpoints = append(w.Endpoints, webhooks.Endpoint{URL: u})
	}
	return w
}

func (w webhookOptions) endpoint() webhooks.Endpoint {
	return webhooks.Endpoint{
		URL:           w.URL,
		EventTypes:    w.EventTypes,
		ChannelPrefix: w.Filter.ChannelNameStartsWith,
		ChannelSuffix: w.Filter.ChannelNameEndsWith,
		Headers:       w.Headers,
		Naming:        webhooks.Naming(w.Naming),
	}
}

// splitURLs splits a comma-separated list, skipping blanks.
func splitURLs(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
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
		Enabled:           a.Enabled == nil || *a.Enabled,
		ClientEvents:      a.ClientEvents,
		RequireTLS:        a.RequireTLS,
		MaxConnections:    a.MaxConnections,
		SubscriptionCount: a.SubscriptionCount,
		Limits:            a.Limits,
	}
}

// appVar marks the default app as customised whenever one of its settings is given, so Herald can
// warn that those settings are ignored when the config file lists apps.
func (o *options) appVar(v flag.Value) flag.Value {
	return funcValue{v, func() { o.defaultAppCustomized = true }}
}

type funcValue struct {
	flag.Value
	onSet func()
}

func (f funcValue) String() string {
	if f.Value == nil { // flag.PrintDefaults probes a zero value
		return ""
	}
	return f.Value.String()
}

func (f funcValue) Set(s string) error {
	f.onSet()
	return f.Value.Set(s)
}

func (f funcValue) IsBoolFlag() bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// value is a flag.Value over a field of options.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	isBool bool
}

func (v value[T]) String() string {
	if v.p == nil {
		return ""
	}
	return fmt.Sprint(*v.p)
}

func (v value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}

func (v value[T]) IsBoolFlag() bool { return v.isBool }

func stringVar(p *string) flag.Value {
	return value[string]{p: p, parse: func(s string) (string, error) { return s, nil }}
}

func intVar(p *int) flag.Value {
	return value[int]{p: p, parse: func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, errors.New("must be a whole number")
		}
		return n, nil
	}}
}

// secondsVar reads a duration in seconds; fractions are allowed (0.5).
func secondsVar(p *float64) flag.Value {
	return value[float64]{p: p, parse: func(s string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errors.New("must be a number of seconds")
		}
		return f, nil
	}}
}

func boolVar(p *bool) flag.Value {
	return value[bool]{p: p, isBool: true, parse: func(s string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return false, errors.New("must be true or false")
		}
		return b, nil
	}}
}
