package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herald-rt/herald/clients"
)

// TestMetricsMatchAWorkload scrapes /metrics after a scripted workload and checks each family
// against what happened: connections opened and closed (with the client's code), frames in and out,
// channels and subscriptions, REST requests by route and status, webhook attempts, and the Go and
// process collectors.
func TestMetricsMatchAWorkload(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer receiver.Close()
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, map[string]string{
		"HERALD_WEBHOOK_URL": receiver.URL, "HERALD_APP_ID": "7", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s3cret",
	})
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	stays := dialSubscribed(ctx, t, "ws://"+addr+"/app/k")
	leaves := dialSubscribed(ctx, t, "ws://"+addr+"/app/k")
	rest := clients.NewREST(clients.RESTConfig{BaseURL: "http://" + addr, AppID: "7", Key: "k", Secret: "s3cret"})
	for i := range 3 {
		if _, err := rest.Trigger(ctx, []string{"room"}, "e", strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		expectEvent(ctx, t, leaves, "room", "e")
		expectEvent(ctx, t, stays, "room", "e")
	}
	if err := leaves.Close(); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		`herald_connections{app_id="7"}`:                                                   1,
		`herald_connections_opened_total{app_id="7"}`:                                      2,
		`herald_connections_closed_total{app_id="7",code="1000"}`:                          1,
		`herald_messages_sent_total{app_id="7"}`:                                           6,
		`herald_channels{app_id="7"}`:                                                      1,
		`herald_subscriptions{app_id="7"}`:                                                 1,
		`herald_rest_requests_total{app_id="7",route="/apps/{appID}/events",status="200"}`: 3,
		`herald_webhook_attempts_total{app_id="7",outcome="delivered"}`:                    1,
		`herald_refused_total{app_id="7",reason="subscribe_rate"}`:                         0,
	}
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = scrape(t, "http://"+addrs["metrics served on /metrics"]+"/metrics")
		if equalOn(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the close and the webhook are counted asynchronously; polled with a deadline
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	for _, series := range []string{`herald_messages_received_total{app_id="7"}`, `herald_sent_bytes_total{app_id="7"}`,
		`herald_received_bytes_total{app_id="7"}`, "go_goroutines", "process_resident_memory_bytes",
		`herald_rest_request_duration_seconds_count{route="/apps/{appID}/events"}`, "herald_webhook_queue_events"} {
		if _, ok := got[series]; !ok {
			t.Errorf("no %s in the scrape", series)
		}
	}
	if got[`herald_messages_received_total{app_id="7"}`] < 2 { // the two subscribes, at least
		t.Errorf("messages received %v, want at least the 2 subscribes", got[`herald_messages_received_total{app_id="7"}`])
	}
	if got[`herald_sent_bytes_total{app_id="7"}`] < 6*30 {
		t.Errorf("sent bytes %v, too few for 6 frames", got[`herald_sent_bytes_total{app_id="7"}`])
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}

func equalOn(got, want map[string]float64) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// scrape reads a Prometheus text exposition into series → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestDashboardNamesExistingMetrics: every metric the Grafana dashboard in docs/ queries is one
// Herald exports (a series of a scrape, or one the collector describes, the cluster's included).
func TestDashboardNamesExistingMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	m := newMetrics(&herald{})
	descs := make(chan *prometheus.Desc, 1000)
	for _, c := range []prometheus.Collector{&serverCollector{}, m.restRequests, m.restDuration, m.publishDelivery,
		m.webhookAttempts, m.webhookDuration, m.webhookDropped, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		c.Describe(descs)
	}
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	for _, name := range regexp.MustCompile(`\b((?:herald|go|process)_[a-z_]+)`).FindAllString(string(b), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		if !known[base] {
			t.Errorf("the dashboard queries %s, which Herald does not export", name)
		}
	}
}
