package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/herald-rt/herald/clients"
)

// maxSockets keeps one herald-bench process under its open-files limit (20,000, which cannot be
// raised here) with room for the REST client and the runtime.
const maxSockets = 19500

// target is the server a subcommand measures and the flags every subcommand shares.
type target struct {
	urls       urlList // the nodes' base URLs; socket i goes to urls[i % len(urls)]
	publishURL string  // where REST calls go; "" means urls[0]
	key        string
	appID      string
	secret     string
	pid        processes // the servers measured, summed
	redis      string    // host:port of the cluster's Redis, whose commands are counted; "" counts none
	label      string
	timeout    time.Duration
}

// register adds the shared flags; withREST adds the app id and secret the REST API and private
// channels need.
func (t *target) register(fs *flag.FlagSet, withREST bool, timeout time.Duration) {
	t.urls = urlList{"ws://127.0.0.1:6001"}
	fs.Var(&t.urls, "url", "server base URL (ws://host:port[/prefix]), loopback only; a comma-separated list spreads the sockets over several nodes")
	fs.StringVar(&t.key, "key", "app-key", "app key")
	if withREST {
		fs.StringVar(&t.appID, "app-id", "app-id", "app id")
		fs.StringVar(&t.secret, "secret", "app-secret", "app secret (signs REST calls and private channels)")
		fs.StringVar(&t.publishURL, "publish-url", "", "base URL of the node REST calls go to (default: the first --url)")
	}
	fs.Var(&t.pid, "pid", "server process id, for its CPU time and RSS from /proc; a comma-separated list sums several nodes (none: not measured)")
	fs.StringVar(&t.redis, "redis", "", "host:port of the cluster's Redis: count its commands per unit of work (INFO commandstats)")
	fs.StringVar(&t.label, "label", "", "name of this run in the JSON line and the chart (default: the subcommand)")
	fs.DurationVar(&t.timeout, "timeout", timeout, "upper bound on the whole run")
}

// dialing is the flags of the subcommands that open their sockets up front through a dialPlan.
type dialing struct {
	connectRate int // dials started per second
	parallel    int // dials in flight at once
	sources     int // 127.0.0.x source addresses; 0: one per 20,000 sockets
}

// register adds --connect-rate, --parallel and --sources.
func (d *dialing) register(fs *flag.FlagSet) {
	fs.IntVar(&d.connectRate, "connect-rate", 2000, "connections opened per second")
	fs.IntVar(&d.parallel, "parallel", 64, "dials in flight at once")
	sourcesVar(fs, &d.sources, 0, "(0: one per 20,000 sockets of the whole run)")
}

// plan opens n sockets as the flags say.
func (d *dialing) plan(n int) dialPlan {
	return dialPlan{n: n, rate: d.connectRate, parallel: d.parallel}
}

// sourcesVar adds --sources; why says what the default means or why it is what it is.
func sourcesVar(fs *flag.FlagSet, p *int, def int, why string) {
	fs.IntVar(p, "sources", def, "127.0.0.x source addresses to dial from "+why)
}

// start readies a run of sockets sockets dialled as d says: it checks the target and d, picks the
// source addresses and returns the run's context, bounded by --timeout.
func (t *target) start(bench string, d *dialing, sockets int) (sources, context.Context, context.CancelFunc, error) {
	if err := t.check(bench); err != nil {
		return nil, nil, nil, err
	}
	if d.connectRate < 1 || d.parallel < 1 {
		return nil, nil, nil, fmt.Errorf("need --connect-rate ≥ 1 and --parallel ≥ 1")
	}
	nsources := d.sources
	if nsources == 0 {
		nsources = autoSources(sockets)
	}
	srcs, err := newSources(nsources)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	return srcs, ctx, cancel, nil
}

func (t *target) check(bench string) error {
	if t.label == "" {
		t.label = bench
	}
	if t.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	for _, u := range append([]string{t.publishURL}, t.urls...) {
		if u == "" {
			continue
		}
		if err := requireLoopback(u); err != nil {
			return err
		}
	}
	if t.redis != "" {
		return requireLoopback("redis://" + t.redis)
	}
	return nil
}

// sample measures the servers and Redis now.
func (t *target) sample() (serverSample, error) { return sampleServer(t.pid, t.redis) }

// finish prints the run's JSON line, and fails the run if it ran out of time (the line still records
// what was measured).
func (t *target) finish(ctx context.Context, out io.Writer, result any) error {
	report(out, result)
	if ctx.Err() != nil {
		return fmt.Errorf("timed out after %s", t.timeout)
	}
	return nil
}

// wsURLs are the app's socket URLs, one per node: socket i dials wsURLs[i % len].
func (t *target) wsURLs() []string {
	out := make([]string, len(t.urls))
	for i, u := range t.urls {
		out[i] = strings.TrimRight(u, "/") + "/app/" + t.key
	}
	return out
}

// rest returns a REST client for the app on the publishing node.
func (t *target) rest(inflight int) *clients.REST {
	hc := restHTTPClient(inflight)
	return clients.NewREST(clients.RESTConfig{BaseURL: t.restBase(), AppID: t.appID, Key: t.key, Secret: t.secret, HTTPClient: hc})
}

// restBase is the http(s) base URL of the node REST calls go to.
func (t *target) restBase() string {
	base := t.publishURL
	if base == "" {
		base = t.urls[0]
	}
	base = strings.TrimRight(base, "/")
	if rest, ok := strings.CutPrefix(base, "wss://"); ok {
		return "https://" + rest
	} else if rest, ok := strings.CutPrefix(base, "ws://"); ok {
		return "http://" + rest
	}
	return base
}

// requireLoopback refuses any target that is not on this machine.
func requireLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("bad --url: %w", err)
	}
	switch h := u.Hostname(); {
	case h == "localhost", h == "::1", len(h) > 4 && h[:4] == "127.":
		return nil
	default:
		return fmt.Errorf("--url host %q is not a loopback address: herald-bench only targets this machine", h)
	}
}

// sources spreads client sockets over loopback source addresses. One address gives about 28,000
// ephemeral ports (fewer while closed sockets sit in TIME_WAIT), so runs that open more sockets than
// that over their lifetime — many rounds, long churn, several processes — dial from 127.0.0.1,
// 127.0.0.2, … via DialOptions.LocalAddr. With one address the kernel picks the source, as usual.
type sources []netip.Addr

// newSources returns n source addresses; n ≤ 1 means the kernel's choice.
func newSources(n int) (sources, error) {
	if n <= 1 {
		return nil, nil
	}
	if n > 254 {
		return nil, fmt.Errorf("--sources %d: at most 254 (127.0.0.1 to 127.0.0.254)", n)
	}
	out := make(sources, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})
	}
	return out, nil
}

// autoSources is the number of source addresses for a run that opens sockets sockets in all, keeping
// each address under 20,000 of them.
func autoSources(sockets int) int { return max(1, (sockets+19999)/20000) }

// options returns the dial options of the i-th socket.
func (s sources) options(i int, eventBuffer int, onEvent func(clients.Event) bool) *clients.DialOptions {
	o := &clients.DialOptions{EventBuffer: eventBuffer, OnEvent: onEvent}
	if len(s) > 0 {
		o.LocalAddr = s[i%len(s)]
	}
	return o
}

// restHTTPClient keeps one idle connection per request in flight, so a publisher never pays for a new
// TCP connection per request, and bounds every request.
func restHTTPClient(inflight int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(inflight, 2) * 2
	t.MaxIdleConnsPerHost = max(inflight, 2) * 2
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// urlList is a comma-separated flag of URLs.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	*l = nil
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	if len(*l) == 0 {
		return fmt.Errorf("no URL in %q", v)
	}
	return nil
}
