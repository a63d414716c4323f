package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sessionsResult is the JSON line of a sessions run.
type sessionsResult struct {
	Bench           string    `json:"bench"`
	Label           string    `json:"label"`
	Transport       string    `json:"transport"`
	Sessions        int       `json:"sessions"`
	OK              int64     `json:"ok"`
	ServerPID       processes `json:"pid,omitempty"`
	RSSBefore       int64     `json:"rss_before,omitempty"`
	RSSOpen         int64     `json:"rss_open,omitempty"`
	BytesPerSession int64     `json:"bytes_per_session,omitempty"`
	FirstFailure    string    `json:"first_failure,omitempty"`
	// With --events (streaming only): the events published, the deliveries the streams read, and the
	// server's cost per delivery.
	Events    int   `json:"events,omitempty"`
	Delivered int64 `json:"delivered,omitempty"`
	serverCost
}

// runSessions opens N HTTP fallback sessions of pusher-js's shape, each subscribed to one of K public
// channels and then idle with its receiving request held (a stream, or a poll waiting for the next
// event), and reports the server's RSS growth per session.
func runSessions(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	var t target
	t.register(fs, true, 5*time.Minute)
	n := fs.Int("n", 1000, "sessions to open (each holds one socket: at most 19500)")
	channels := fs.Int("channels", 100, "public channels the sessions are spread over")
	transport := fs.String("transport", "xhr_streaming", "xhr_streaming or xhr (polling)")
	hold := fs.Duration("hold", 3*time.Second, "how long to hold the sessions before measuring")
	events := fs.Int("events", 0, "then publish this many events to channel bench-0 (use --channels 1) and count what the streams read: server CPU per delivery (xhr_streaming only)")
	rate := fs.Float64("rate", 40, "events per second with --events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxSockets || *channels < 1 || (*transport != "xhr_streaming" && *transport != "xhr") {
		return fmt.Errorf("need 1 ≤ n ≤ %d, channels ≥ 1, transport xhr_streaming or xhr", maxSockets)
	}
	if err := t.check("sessions"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	base := strings.Replace(strings.Replace(strings.TrimRight(t.urls[0], "/"), "ws://", "http://", 1), "wss://", "https://", 1) + "/pusher/app/" + t.key
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 64,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	res := sessionsResult{Bench: "sessions", Label: t.label, Transport: *transport, Sessions: *n, ServerPID: t.pid}
	before, err := t.sample()
	if err != nil {
		return err
	}
	res.RSSBefore = before.rss
	post := func(url, body string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		return client.Do(req)
	}
	var mu sync.Mutex
	var ok int64
	held := make([]io.Closer, 0, *n)
	fail := func(err error) {
		mu.Lock()
		if res.FirstFailure == "" {
			res.FirstFailure = err.Error()
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sess := base + "/" + strconv.Itoa(i%1000) + "/s" + strconv.Itoa(i)
			// Open with a poll (o), take connection_established with another, subscribe, then hold the
			// receiving request the transport keeps.
			for range 2 {
				resp, err := post(sess+"/xhr", "")
				if err != nil {
					fail(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			frame := `{"event":"pusher:subscribe","data":{"channel":"bench-` + strconv.Itoa(i%*channels) + `"}}`
			resp, err := post(sess+"/xhr_send", `[`+strconv.Quote(frame)+`]`)
			if err != nil {
				fail(err)
				return
			}
			resp.Body.Close()
			resp, err = post(sess+"/"+*transport, "")
			if err != nil {
				fail(err)
				return
			}
			if *transport == "xhr" { // this poll returns subscription_succeeded; the next one waits
				_, _ = bufio.NewReader(resp.Body).ReadString('\n')
				resp.Body.Close()
				// A held poll answers nothing until it has something (or pollHold passed): it waits in
				// a goroutine of its own, ended by the run's context.
				go func() {
					if resp, err := post(sess+"/xhr", ""); err == nil {
						resp.Body.Close()
					}
				}()
				mu.Lock()
				ok++
				mu.Unlock()
				return
			}
			mu.Lock()
			ok++
			held = append(held, resp.Body)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sleepCtx(ctx, *hold)
	open, err := t.sample()
	if err != nil {
		return err
	}
	res.OK, res.RSSOpen = ok, open.rss
	if ok > 0 && len(t.pid) > 0 {
		res.BytesPerSession = (open.rss - before.rss) / ok
	}
	if *events > 0 && *transport == "xhr_streaming" {
		if err := streamFanout(ctx, &t, held, *events, *rate, &res); err != nil {
			return err
		}
	}
	for _, b := range held {
		b.Close()
	}
	fmt.Fprintf(out, "sessions: %d of %d %s sessions open and subscribed\n", ok, *n, *transport)
	if len(t.pid) > 0 {
		fmt.Fprintf(out, "server RSS %.1f MiB -> %.1f MiB: %d bytes per session\n", mib(before.rss), mib(open.rss), res.BytesPerSession)
	}
	if res.Events > 0 {
		fmt.Fprintf(out, "published %d events, the streams read %d deliveries\n", res.Events, res.Delivered)
		res.serverCost.print(out, "delivery")
	}
	return t.finish(ctx, out, res)
}

// streamFanout publishes events at rate to bench-0 and counts, on every held stream, the lines
// carrying them, for the server's CPU per delivery.
func streamFanout(ctx context.Context, t *target, streams []io.Closer, events int, rate float64, res *sessionsResult) error {
	var delivered atomic.Int64
	done := make(chan struct{})
	want := int64(events * len(streams))
	for _, s := range streams {
		go func() {
			sc := bufio.NewScanner(s.(io.Reader))
			for sc.Scan() {
				if n := int64(strings.Count(sc.Text(), `bench-event`)); n > 0 && delivered.Add(n) == want {
					close(done)
				}
			}
		}()
	}
	before, err := t.sample()
	if err != nil {
		return err
	}
	rest := t.rest(4)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range events {
		<-tick.C
		if _, err := rest.Trigger(ctx, []string{"bench-0"}, "bench-event", strconv.Itoa(i), nil); err != nil {
			return err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	after, err := t.sample()
	if err != nil {
		return err
	}
	res.Events, res.Delivered = events, delivered.Load()
	if len(t.pid) > 0 {
		res.serverCost = costBetween(before, after, res.Delivered)
	}
	return nil
}
