package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// version is the release, set at build time (make build: -ldflags "-X main.version=…"); without
// it, the module's version control revision stands in.
var version = ""

// versionString is what `herald version` prints.
func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v = "dev-" + s.Value[:12]
				}
			}
		}
	}
	return "herald " + v + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// commandUsages lists the subcommands (herald NAME [flags]) for --help. With none, herald serves.
var commandUsages = [][2]string{
	{"check-config", "check a config file (and the environment) without starting: check-config FILE"},
	{"status", "show a running Herald's numbers, read from its metrics listener"},
	{"trigger", "publish an event through a Herald's REST API, signed with the app's secret"},
	{"up", "exit 0 if the local Herald answers /up (--ready: /ready): a container's health check"},
	{"version", "print the version"},
}

type commandFunc func(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int

func commandNamed(name string) commandFunc {
	switch name {
	case "check-config":
		return runCheckConfig
	case "status":
		return runStatus
	case "trigger":
		return runTrigger
	case "up":
		return runUp
	case "version", "--version", "-version":
		return runVersion
	}
	return nil
}

func runVersion(_ []string, _ func(string) (string, bool), stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, versionString())
	return 0
}

// runCheckConfig loads FILE as herald would (with the environment on top), and names every setting
// it cannot start with.
func runCheckConfig(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: herald check-config FILE")
		return 2
	}
	o, err := loadOptions([]string{"--config", args[0]}, lookup, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "herald: %s is not valid:\n", args[0])
		for _, e := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  - %s\n", e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d apps, %d webhook endpoints)\n", args[0], len(o.apps()), o.webhookEndpoints())
	return 0
}

// restTarget is the Herald and app a client subcommand talks to: flags over HERALD_URL and the
// HERALD_APP_* variables, over the embedded default app on 127.0.0.1:6001.
type restTarget struct{ url, appID, key, secret string }

func (t *restTarget) register(fs *flag.FlagSet, lookup func(string) (string, bool)) {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&t.url, "url", get("HERALD_URL", "http://127.0.0.1:6001"), "Herald's base URL, path prefix included (env HERALD_URL)")
	fs.StringVar(&t.appID, "app-id", get("HERALD_APP_ID", defaultAppID), "app id (env HERALD_APP_ID)")
	fs.StringVar(&t.key, "app-key", get("HERALD_APP_KEY", defaultAppKey), "app key (env HERALD_APP_KEY)")
	fs.StringVar(&t.secret, "app-secret", get("HERALD_APP_SECRET", defaultAppSecret), "app secret, which signs the request (env HERALD_APP_SECRET)")
}

func (t *restTarget) client() *clients.REST {
	return clients.NewREST(clients.RESTConfig{BaseURL: t.url, AppID: t.appID, Key: t.key, Secret: t.secret})
}

// stringsFlag is a flag that may be given several times.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// runTrigger publishes one event: a shell backend's one-liner.
func runTrigger(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald trigger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var t restTarget
	t.register(fs, lookup)
	var channels stringsFlag
	fs.Var(&channels, "channel", "channel to publish to (repeat for several, up to 100)")
	event := fs.String("event", "", "event name")
	data := fs.String("data", "{}", "event data: JSON, sent as the event's data string")
	socketID := fs.String("socket-id", "", "exclude this connection (the one that caused the event)")
	user := fs.String("user", "", "send to every connection of this signed-in user (sendToUser) instead of channels")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for Herald")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: herald trigger --channel C --event E [--data JSON] [--socket-id ID]\n       herald trigger --user U --event E [--data JSON]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *user != "" {
		channels = append(channels, pusher.ServerToUserPrefix+*user)
	}
	switch {
	case *event == "":
		fmt.Fprintln(stderr, "herald trigger: --event is required")
		return 2
	case len(channels) == 0:
		fmt.Fprintln(stderr, "herald trigger: --channel or --user is required")
		return 2
	case !json.Valid([]byte(*data)):
		fmt.Fprintf(stderr, "herald trigger: --data is not valid JSON: %s\n", *data)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var opts *clients.TriggerOptions
	if *socketID != "" {
		opts = &clients.TriggerOptions{SocketID: *socketID}
	}
	if _, err := t.client().Trigger(ctx, channels, *event, *data, opts); err != nil {
		fmt.Fprintf(stderr, "herald trigger: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "published %s to %s\n", *event, strings.Join(channels, ", "))
	return 0
}

// subcommand runs args[0] if it names one, and reports whether it did.
func subcommand(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	run := commandNamed(args[0])
	if run == nil {
		return 0, false
	}
	return run(args[1:], lookup, stdout, stderr), true
}

var errNoMetrics = errors.New("no metrics: start herald with --metrics-addr (HERALD_METRICS_ADDR) and point --metrics-url at it")

// runUp asks the Herald at HERALD_ADDR (or --url) for /up, or /ready, and exits 0 on 200: a health
// check that needs no curl in a minimal image.
func runUp(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := "127.0.0.1:6001"
	if v, ok := lookup("HERALD_ADDR"); ok && v != "" {
		addr = v
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	scheme := "http"
	if v, ok := lookup("HERALD_TLS_CERT"); ok && v != "" {
		scheme = "https"
	}
	url := fs.String("url", scheme+"://"+addr, "Herald's base URL, path prefix included (default from HERALD_ADDR)")
	ready := fs.Bool("ready", false, "ask /ready (ready for traffic: not draining, hearing the cluster) instead of /up")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := "/up"
	if *ready {
		path = "/ready"
	}
	// The certificate is the node's own, for its public name: the check is about liveness, not trust.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(strings.TrimRight(*url, "/") + path)
	if err != nil {
		fmt.Fprintf(stderr, "herald up: %v\n", err)
		return 1
	}
	resp.Body.Close()
	fmt.Fprintf(stdout, "%s%s: %s\n", *url, path, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
