package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/webhooks"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configFrom loads the options args and vars give and converts them to the channels Config, failing
// the test on any error.
func configFrom(t *testing.T, args []string, vars map[string]string) (*options, channels.Config) {
	t.Helper()
	o, err := loadOptions(args, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.serverConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o, cfg
}

func TestDefaultsGiveTheEmbeddedApp(t *testing.T) {
	o, err := loadOptions(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	apps := o.apps()
	if o.Addr != "0.0.0.0:6001" || o.ActivityTimeout != 120 || len(apps) != 1 {
		t.Fatalf("defaults = %+v", o)
	}
	a := apps[0].app()
	if a.ID != "app-id" || a.Key != "app-key" || a.Secret != "app-secret" || !a.Enabled || !a.ClientEvents {
		t.Errorf("default app = %+v", a)
	}
}

// TestPrecedence: flags over environment over the config file over defaults.
func TestPrecedence(t *testing.T) {
	path := writeConfig(t, `{"addr":"file:1","activity_timeout":50,"pong_timeout":20,"log_level":"warn"}`)
	o, err := loadOptions([]string{"--addr", "flag:3"}, env(map[string]string{
		"HERALD_CONFIG": path, "HERALD_ADDR": "env:2", "HERALD_ACTIVITY_TIMEOUT": "60",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "flag:3" || o.ActivityTimeout != 60 || o.PongTimeout != 20 || o.LogLevel != "warn" || o.ShutdownTimeout != 10 {
		t.Errorf("options = addr %s activity %v pong %v level %s shutdown %v", o.Addr, o.ActivityTimeout, o.PongTimeout, o.LogLevel, o.ShutdownTimeout)
	}
}

func TestDefaultAppFromEnvironment(t *testing.T) {
	o, err := loadOptions(nil, env(map[string]string{
		"HERALD_APP_ID": "7", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s",
		"HERALD_APP_CLIENT_EVENTS": "false", "HERALD_PATH_PREFIX": "/admin/wss", "HERALD_APP_SUBSCRIPTION_COUNT": "true",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := o.apps()[0].app()
	if a.ID != "7" || a.Key != "k" || a.Secret != "s" || a.ClientEvents || o.PathPrefix != "/admin/wss" || !a.SubscriptionCount {
		t.Errorf("app = %+v, prefix %q", a, o.PathPrefix)
	}
}

func TestConfigFileApps(t *testing.T) {
	path := writeConfig(t, `{"apps":[{"id":"1","key":"a","secret":"x","client_events":true},
		{"id":"2","key":"b","secret":"y","enabled":false,"max_connections":2,"max_presence_members":5}]}`)
	o, err := loadOptions([]string{"--config", path, "--app-id", "ignored"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	apps := o.apps()
	if len(apps) != 2 || !o.defaultAppCustomized {
		t.Fatalf("apps = %+v", apps)
	}
	second := apps[1].app()
	if second.Enabled || second.MaxConnections != 2 || second.Limits.MaxPresenceMembers != 5 {
		t.Errorf("second app = %+v", second)
	}
	if first := apps[0].app(); !first.Enabled || !first.ClientEvents {
		t.Errorf("first app = %+v", first)
	}
}

// TestBadConfigurationNamesTheField: every mistake stops Herald with a message naming the setting.
func TestBadConfigurationNamesTheField(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"env not a number", nil, map[string]string{"HERALD_ACTIVITY_TIMEOUT": "abc"}, "", "HERALD_ACTIVITY_TIMEOUT"},
		{"flag not a bool", []string{"--app-client-events=maybe"}, nil, "", "app-client-events"},
		{"zero activity timeout", []string{"--activity-timeout", "0"}, nil, "", "activity_timeout"},
		{"log format", nil, map[string]string{"HERALD_LOG_FORMAT": "xml"}, "", "log_format"},
		{"log level", nil, map[string]string{"HERALD_LOG_LEVEL": "loud"}, "", "log_level"},
		{"prefix", []string{"--path-prefix", "admin/"}, nil, "", "path_prefix"},
		{"unknown field", nil, nil, `{"adr":"x"}`, `"adr"`},
		{"wrong type", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","max_connections":"many"}]}`, "max_connections"},
		{"syntax", nil, nil, "{\n\"addr\": \n}", "line 3"},
		{"empty key", nil, nil, `{"apps":[{"id":"1","key":"","secret":"s"}]}`, "key is empty"},
		{"negative limit", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","max_batch_events":-1}]}`, "max_batch_events"},
		{"missing file", []string{"--config", "/nonexistent/herald.json"}, nil, "", "/nonexistent/herald.json"},
		{"stray argument", []string{"serve"}, nil, "", `"serve"`},
		{"webhook url", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","webhooks":[{"url":"http://ok/"},{"url":"ftp://x"}]}]}`, "apps[0].webhooks[1].url"},
		{"webhook event type", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","webhooks":[{"url":"http://h/","event_types":["member_joined"]}]}]}`, `apps[0].webhooks[0].event_types: unknown event type "member_joined"`},
		{"webhook naming", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","webhooks":[{"url":"http://h/","naming":"soketi"}]}]}`, `apps[0].webhooks[0].naming: unknown naming mode "soketi"`},
		{"webhook filter typo", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","webhooks":[{"url":"http://h/","filter":{"channel_prefix":"x"}}]}]}`, `"channel_prefix"`},
		{"webhook batching", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","webhook_batching":{"enabled":true,"window_ms":-5}}]}`, "apps[0].webhook_batching.window_ms"},
		{"webhook url env", nil, map[string]string{"HERALD_WEBHOOK_URL": "http://ok/,localhost:8080/hook"}, "", "webhook_url (HERALD_WEBHOOK_URL): url"},
		{"webhook delay", nil, map[string]string{"HERALD_WEBHOOK_DELAY": "soon"}, "", "HERALD_WEBHOOK_DELAY"},
		{"negative webhook delay", []string{"--webhook-delay=-1"}, nil, "", "webhook_delay"},
		{"zero webhook timeout", nil, map[string]string{"HERALD_WEBHOOK_TIMEOUT": "0"}, "", "webhook_timeout"},
		{"absurd frame limit", []string{"--max-frame-bytes", "16777217"}, nil, "", "max_frame_bytes (HERALD_MAX_FRAME_BYTES) 16777217 is over the maximum of 16777216 (16 MiB)"},
		{"frame limit 1e12", nil, nil, `{"max_frame_bytes": 1000000000000}`, "max_frame_bytes (HERALD_MAX_FRAME_BYTES)"},
		{"header limit too small", []string{"--max-header-bytes", "1023"}, nil, "", "max_header_bytes (HERALD_MAX_HEADER_BYTES) 1023 must be between 1024 and 1048576"},
		{"header limit too large", nil, nil, `{"max_header_bytes": 1048577}`, "max_header_bytes (HERALD_MAX_HEADER_BYTES) 1048577"},
		{"zero header timeout", nil, map[string]string{"HERALD_READ_HEADER_TIMEOUT": "0"}, "", "read_header_timeout (HERALD_READ_HEADER_TIMEOUT) must be a positive"},
		{"negative queue bound", []string{"--max-queue-bytes=-1"}, nil, "", "max_queue_bytes (HERALD_MAX_QUEUE_BYTES) -1 must not be negative"},
		{"negative cache bound", nil, nil, `{"cache_max_bytes": -5}`, "cache_max_bytes (HERALD_CACHE_MAX_BYTES) -5 must not be negative"},
		{"negative subscribe rate", nil, nil, `{"apps":[{"id":"1","key":"k","secret":"s","subscriptions_per_second":-1}]}`, "subscriptions_per_second"},
		{"empty secret env", nil, map[string]string{"HERALD_APP_SECRET": ""}, "", "HERALD_APP_SECRET is set but empty"},
		{"empty key env", nil, map[string]string{"HERALD_APP_KEY": ""}, "", "HERALD_APP_KEY is set but empty"},
		{"empty id flag", []string{"--app-id="}, nil, "", "--app-id is empty"},
		{"empty secret in file", nil, nil, `{"app_secret": ""}`, `field "app_secret" is empty`},
		{"default app key type", nil, nil, `{"app_max_connections": "lots"}`, `field "app_max_connections"`},
	}
	for _, tt := range tests {
		args := tt.args
		if tt.file != "" {
			args = append(args, "--config", writeConfig(t, tt.file))
		}
		_, err := loadOptions(args, env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %s", tt.name, err, tt.want)
		}
	}
}

// TestLimitsAtTheirMaximum: the largest accepted value of each bounded size setting loads.
func TestLimitsAtTheirMaximum(t *testing.T) {
	o, cfg := configFrom(t, []string{"--max-frame-bytes", "16777216", "--max-header-bytes", "1048576"}, nil)
	if cfg.MaxFrameBytes != 16<<20 || o.httpServer(nil, nil).MaxHeaderBytes != 1<<20 {
		t.Errorf("frame limit %d, header limit %d", cfg.MaxFrameBytes, o.httpServer(nil, nil).MaxHeaderBytes)
	}
}

func TestHelpListsEveryEnvironmentVariable(t *testing.T) {
	var out strings.Builder
	if _, err := loadOptions([]string{"--help"}, env(nil), &out); err == nil {
		t.Fatal("--help returned no error")
	}
	for _, v := range []string{"HERALD_ADDR", "HERALD_APP_ID", "HERALD_APP_KEY", "HERALD_APP_SECRET",
		"HERALD_APP_CLIENT_EVENTS", "HERALD_ACTIVITY_TIMEOUT", "HERALD_PATH_PREFIX", "HERALD_CONFIG",
		"HERALD_WEBHOOK_URL", "HERALD_WEBHOOK_DELAY", "HERALD_WEBHOOK_TIMEOUT", "HERALD_WEBHOOK_RETRY_FOR"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

// TestWebhookOptions: per-app endpoints and batching from the file, global timings from the
// environment, and the conversion to the webhooks package's Config.
func TestWebhookOptions(t *testing.T) {
	path := writeConfig(t, `{"webhook_retry_for": 60, "apps":[
		{"id":"1","key":"a","secret":"x","webhooks":[
			{"url":"https://hooks.example/all"},
			{"url":"http://hooks.example/presence","event_types":["member_added","member_removed"],
			 "filter":{"channel_name_starts_with":"presence-","channel_name_ends_with":"-eu"},
			 "headers":{"X-Token":"t"},"naming":"webman"}],
		 "webhook_batching":{"enabled":true,"window_ms":20,"max_events":10}},
		{"id":"2","key":"b","secret":"y"}]}`)
	o, err := loadOptions([]string{"--config", path}, env(map[string]string{"HERALD_WEBHOOK_DELAY": "1.5"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.webhookConfig(nil)
	if cfg.RemovalDelay != 1500*time.Millisecond || cfg.Timeout != 10*time.Second || cfg.RetryFor != time.Minute {
		t.Errorf("timings = delay %v, timeout %v, retry for %v", cfg.RemovalDelay, cfg.Timeout, cfg.RetryFor)
	}
	if len(cfg.Apps) != 2 || len(cfg.Apps[1].Endpoints) != 0 {
		t.Fatalf("apps = %+v", cfg.Apps)
	}
	a := cfg.Apps[0]
	want := webhooks.Endpoint{URL: "http://hooks.example/presence", EventTypes: []string{"member_added", "member_removed"},
		ChannelPrefix: "presence-", ChannelSuffix: "-eu", Headers: map[string]string{"X-Token": "t"}, Naming: webhooks.NamingWebman}
	if a.ID != "1" || a.Key != "a" || a.Secret != "x" || len(a.Endpoints) != 2 || !reflect.DeepEqual(a.Endpoints[1], want) ||
		a.Batching != (webhooks.Batching{Enabled: true, Window: 20 * time.Millisecond, MaxEvents: 10}) {
		t.Errorf("app = %+v", a)
	}
	d, err := webhooks.New(cfg)
	if err != nil {
		t.Fatalf("webhooks.New refuses what loadOptions accepted: %v", err)
	}
	_ = d.Shutdown(context.Background())
}

// TestWebhookURLFromEnvironment: HERALD_WEBHOOK_URL gives the default app endpoints for every event
// type; 0 seconds of delay and of retries mean none.
func TestWebhookURLFromEnvironment(t *testing.T) {
	o, err := loadOptions([]string{"--webhook-retry-for", "0"}, env(map[string]string{
		"HERALD_WEBHOOK_URL": " http://127.0.0.1:9000/a, ,https://b.example/hook ", "HERALD_WEBHOOK_DELAY": "0",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.webhookConfig(nil)
	if cfg.RemovalDelay >= 0 || cfg.RetryFor >= 0 {
		t.Errorf("delay %v, retry for %v: want negative (none)", cfg.RemovalDelay, cfg.RetryFor)
	}
	eps := cfg.Apps[0].Endpoints
	if cfg.Apps[0].ID != "app-id" || len(eps) != 2 || eps[0].URL != "http://127.0.0.1:9000/a" || eps[1].URL != "https://b.example/hook" ||
		len(eps[0].EventTypes) != 0 || eps[0].Naming != "" {
		t.Errorf("default app webhooks = %+v", cfg.Apps[0])
	}
}

func TestUserFeatureOptions(t *testing.T) {
	_, cfg := configFrom(t, nil, map[string]string{
		"HERALD_CACHE_TTL": "60", "HERALD_WATCHLIST_GRACE": "1.5",
		"HERALD_APP_AUTHORIZATION_TIMEOUT": "30", "HERALD_APP_SUBSCRIPTION_COUNT": "true",
	})
	a := cfg.Apps[0]
	if cfg.CacheTTL != time.Minute || cfg.WatchlistGrace != 1500*time.Millisecond ||
		a.AuthorizationTimeout != 30*time.Second || !a.SubscriptionCount {
		t.Errorf("config = cache %v grace %v auth %v count %v keys %v", cfg.CacheTTL, cfg.WatchlistGrace,
			a.AuthorizationTimeout, a.SubscriptionCount, cfg.TokenKeys)
	}
}

// TestTokenMaxLifetime: every app's token key carries token_max_lifetime, 24 h unless set.
func TestTokenMaxLifetime(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want time.Duration
	}{
		{nil, 24 * time.Hour},
		{map[string]string{"HERALD_TOKEN_MAX_LIFETIME": "3600"}, time.Hour},
		{map[string]string{"HERALD_TOKEN_MAX_LIFETIME": "0.5"}, 500 * time.Millisecond},
	} {
		_, cfg := configFrom(t, nil, tt.vars)
		if k := cfg.TokenKeys[defaultAppID]; k.MaxLifetime != tt.want || string(k.HMACSecret) != defaultAppSecret {
			t.Errorf("%v: token key %+v, want lifetime %v over the app secret", tt.vars, k, tt.want)
		}
	}
	if _, err := loadOptions(nil, env(map[string]string{"HERALD_TOKEN_MAX_LIFETIME": "0"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "token_max_lifetime (HERALD_TOKEN_MAX_LIFETIME)") {
		t.Errorf("zero lifetime: %v", err)
	}
}

func TestTokenKeyOptions(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemPath := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `{"apps":[
		{"id":"1","key":"a","secret":"x","token_secret":"dedicated"},
		{"id":"2","key":"b","secret":"y","token_public_key_file":"`+pemPath+`"},
		{"id":"3","key":"c","secret":"z"}]}`)
	_, cfg := configFrom(t, []string{"--config", path}, nil)
	if string(cfg.TokenKeys["1"].HMACSecret) != "dedicated" || cfg.TokenKeys["2"].PublicKey == nil {
		t.Errorf("token keys = %+v", cfg.TokenKeys)
	}
	if k := cfg.TokenKeys["3"]; string(k.HMACSecret) != "z" || k.PublicKey != nil {
		t.Errorf("an app without a token setting got key %+v; it should use its secret", k)
	}

	for name, tc := range map[string]struct{ app, want string }{
		"both":      {`{"id":"1","key":"a","secret":"x","token_secret":"s","token_public_key_file":"` + pemPath + `"}`, "not both"},
		"missing":   {`{"id":"1","key":"a","secret":"x","token_public_key_file":"/nonexistent.pem"}`, "token_public_key_file"},
		"not a key": {`{"id":"1","key":"a","secret":"x","token_public_key_file":"` + path + `"}`, "token_public_key_file"},
		"negative":  {`{"id":"1","key":"a","secret":"x","authorization_timeout":-1}`, "authorization_timeout"},
	} {
		_, err := loadOptions([]string{"--config", writeConfig(t, `{"apps":[`+tc.app+`]}`)}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %s", name, err, tc.want)
		}
	}
	for _, bad := range []map[string]string{{"HERALD_CACHE_TTL": "0"}, {"HERALD_WATCHLIST_GRACE": "0"}} {
		if _, err := loadOptions(nil, env(bad), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestExampleConfigLoads keeps the example shipped in testdata (and linked from the README) valid.
func TestExampleConfigLoads(t *testing.T) {
	o, _ := configFrom(t, []string{"--config", "../../testdata/config/herald.example.json"}, nil)
	if len(o.apps()) != 2 {
		t.Errorf("example config has %d apps, want 2", len(o.apps()))
	}
}

// TestDurationsInSeconds: every duration setting takes fractional seconds from the file, the
// environment and flags, and whole numbers keep working; each reaches its package's Config converted
// the same way.
func TestDurationsInSeconds(t *testing.T) {
	path := writeConfig(t, `{"activity_timeout": 2.5, "pong_timeout": 30, "cache_ttl": 0.75,
		"apps": [{"id": "1", "key": "k", "secret": "s", "authorization_timeout": 1.25}]}`)
	o, cfg := configFrom(t, []string{"--config", path, "--webhook-timeout", "0.5", "--shutdown-timeout", "7"}, map[string]string{
		"HERALD_WATCHLIST_GRACE": "0.1", "HERALD_WEBHOOK_DELAY": "2", "HERALD_WEBHOOK_RETRY_FOR": "90.5",
	})
	wh := o.webhookConfig(nil)
	for name, got := range map[string][2]time.Duration{
		"activity_timeout":      {cfg.ActivityTimeout, 2500 * time.Millisecond},
		"pong_timeout":          {cfg.PongTimeout, 30 * time.Second},
		"cache_ttl":             {cfg.CacheTTL, 750 * time.Millisecond},
		"authorization_timeout": {cfg.Apps[0].AuthorizationTimeout, 1250 * time.Millisecond},
		"watchlist_grace":       {cfg.WatchlistGrace, 100 * time.Millisecond},
		"shutdown_timeout":      {o.ShutdownTimeout.duration(), 7 * time.Second},
		"webhook_timeout":       {wh.Timeout, 500 * time.Millisecond},
		"webhook_delay":         {wh.RemovalDelay, 2 * time.Second},
		"webhook_retry_for":     {wh.RetryFor, 90500 * time.Millisecond},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %v, want %v", name, got[0], got[1])
		}
	}
	for _, tc := range []struct {
		file, want string
	}{
		{`{"pong_timeout": "30"}`, `field "pong_timeout" must be a number of seconds, not JSON string`},
		{`{"cache_ttl": 1e-12}`, "cache_ttl (HERALD_CACHE_TTL) must be a positive number of seconds"},
		{`{"shutdown_timeout": -0.5}`, "shutdown_timeout (HERALD_SHUTDOWN_TIMEOUT) must not be negative"},
	} {
		_, err := loadOptions([]string{"--config", writeConfig(t, tc.file)}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
	if (seconds(1e300)).duration() != math.MaxInt64 || (seconds(-1e300)).duration() != math.MinInt64 {
		t.Error("huge durations overflow instead of saturating")
	}
}

// TestDefaultAppInFile: the default app's settings, and its webhook URLs, can live in the file under
// the flag's name.
func TestDefaultAppInFile(t *testing.T) {
	path := writeConfig(t, `{"app_id": "9", "app_key": "k9", "app_secret": "s9", "app_client_events": false,
		"app_max_connections": 7, "app_authorization_timeout": 2.5, "webhook_url": "http://hooks.test/a"}`)
	o, cfg := configFrom(t, []string{"--config", path}, nil)
	a := cfg.Apps[0]
	if a.ID != "9" || a.Key != "k9" || a.Secret != "s9" || a.ClientEvents || a.MaxConnections != 7 || a.AuthorizationTimeout != 2500*time.Millisecond {
		t.Errorf("default app from the file = %+v", a)
	}
	if eps := o.defaultApp.webhookApp().Endpoints; len(eps) != 1 || eps[0].URL != "http://hooks.test/a" {
		t.Errorf("webhook endpoints from the file = %+v", eps)
	}
	// The environment still overrides the file.
	_, cfg = configFrom(t, []string{"--config", path}, map[string]string{"HERALD_APP_KEY": "env-key"})
	if cfg.Apps[0].Key != "env-key" {
		t.Errorf("key %q, want the environment's", cfg.Apps[0].Key)
	}
}

func TestUnknownVariables(t *testing.T) {
	o := defaultOptions()
	got := unknownVariables([]string{"HERALD_CONFG=x", "HERALD_CONFIG=y", "HERALD_URL=http://h", "HERALDTEST_X=1", "PATH=/bin", "HERALD_APP_SECRET="}, o.settings())
	if !reflect.DeepEqual(got, []string{"HERALD_CONFG"}) {
		t.Errorf("unknown variables %v, want [HERALD_CONFG]", got)
	}
}
