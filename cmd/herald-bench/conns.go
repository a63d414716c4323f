package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/clients"
)

// connsResult is the JSON line of a conns run.
type connsResult struct {
	Bench         string  `json:"bench"`
	Connections   int     `json:"connections"`
	Channels      int     `json:"channels"`
	OK            int64   `json:"ok"`
	Failed        int64   `json:"failed"`
	Seconds       float64 `json:"open_seconds"`
	RSSBefore     int64   `json:"rss_before"`
	RSSAfter      int64   `json:"rss_after"`
	BytesPerConn  int64   `json:"bytes_per_conn"`
	FirstFailure  string  `json:"first_failure,omitempty"`
	ServerPID     int     `json:"pid,omitempty"`
	HoldSeconds   float64 `json:"hold_seconds"`
	ConnectRateHz int     `json:"rate"`
}

// runConns opens N connections at a set rate, each subscribed to one of K public channels, holds them,
// and reports the server's RSS growth per connection.
func runConns(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("conns", flag.ContinueOnError)
	target := fs.String("url", "ws://127.0.0.1:6001", "server base URL (ws://host:port[/prefix])")
	key := fs.String("key", "app-key", "app key")
	n := fs.Int("n", 1000, "connections to open (at most 19000: one process's open-files limit)")
	channels := fs.Int("channels", 100, "public channels the connections are spread over")
	rate := fs.Int("rate", 2000, "connections opened per second")
	parallel := fs.Int("parallel", 64, "dials in flight at once")
	pid := fs.Int("pid", 0, "server process id, for RSS from /proc (0: not measured)")
	hold := fs.Duration("hold", 3*time.Second, "how long to hold the connections before measuring")
	timeout := fs.Duration("timeout", 2*time.Minute, "upper bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 19000 || *channels < 1 || *rate < 1 || *parallel < 1 {
		return fmt.Errorf("need 1 ≤ n ≤ 19000, channels ≥ 1, rate ≥ 1, parallel ≥ 1")
	}
	if err := requireLoopback(*target); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := connsResult{Bench: "conns", Connections: *n, Channels: *channels, ServerPID: *pid,
		HoldSeconds: hold.Seconds(), ConnectRateHz: *rate}
	if *pid > 0 {
		rss, err := rssBytes(*pid)
		if err != nil {
			return err
		}
		res.RSSBefore = rss
	}

	conns := make([]*clients.Conn, *n)
	var ok, failed atomic.Int64
	var firstFailure sync.Once
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	slots := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range conns {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("timed out after opening %d connections", i)
		}
		slots <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-slots }()
			c, err := openSubscribed(ctx, *target+"/app/"+*key, "bench-"+strconv.Itoa(i%*channels))
			if err != nil {
				failed.Add(1)
				firstFailure.Do(func() { res.FirstFailure = err.Error() })
				return
			}
			conns[i] = c
			ok.Add(1)
		}(i)
	}
	wg.Wait()
	res.Seconds = time.Since(began).Seconds()
	res.OK, res.Failed = ok.Load(), failed.Load()

	select {
	case <-time.After(*hold): // the measurement is of connections held idle
	case <-ctx.Done():
	}
	if *pid > 0 {
		rss, err := rssBytes(*pid)
		if err != nil {
			return err
		}
		res.RSSAfter = rss
		if res.OK > 0 {
			res.BytesPerConn = (res.RSSAfter - res.RSSBefore) / res.OK
		}
	}
	closeAll(conns, *parallel)

	fmt.Fprintf(out, "conns: %d of %d connections subscribed (%d failed) in %.1fs over %d channels\n",
		res.OK, res.Connections, res.Failed, res.Seconds, res.Channels)
	if *pid > 0 {
		fmt.Fprintf(out, "server RSS %.1f MiB -> %.1f MiB: %d bytes per connection\n",
			float64(res.RSSBefore)/(1<<20), float64(res.RSSAfter)/(1<<20), res.BytesPerConn)
	}
	if res.FirstFailure != "" {
		fmt.Fprintf(out, "first failure: %s\n", res.FirstFailure)
	}
	report(out, res)
	return nil
}

// openSubscribed dials and subscribes one connection whose events are dropped on arrival, so the load
// generator holds no per-connection queue worth measuring.
func openSubscribed(ctx context.Context, wsURL, channel string) (*clients.Conn, error) {
	c, err := clients.Dial(ctx, wsURL, &clients.DialOptions{EventBuffer: 4})
	if err != nil {
		return nil, err
	}
	if _, err := c.SubscribeAndWait(ctx, channel, nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func closeAll(conns []*clients.Conn, parallel int) {
	work := make(chan *clients.Conn)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				_ = c.Close()
			}
		}()
	}
	for _, c := range conns {
		if c != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
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
