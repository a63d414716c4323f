package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// runStatus prints a running node's numbers, GatewayWorker's `status` for Herald: uptime, memory,
// connections, channels and traffic per app, webhooks, and the cluster's nodes. It reads the node's
// metrics listener, which serves nothing secret and is meant to stay on a private address.
func runStatus(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := "http://127.0.0.1:9601/metrics"
	if addr, ok := lookup("HERALD_METRICS_ADDR"); ok && addr != "" {
		def = "http://" + addr + "/metrics"
	}
	url := fs.String("metrics-url", def, "the node's metrics endpoint (default from HERALD_METRICS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "herald status: %v\n%v\n", err, errNoMetrics)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "herald status: %s answered %s\n", *url, resp.Status)
		return 1
	}
	m, err := parseExposition(resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "herald status: %s: %v\n", *url, err)
		return 1
	}
	printStatus(stdout, m, time.Now())
	return 0
}

// printStatus writes the summary of one scrape.
func printStatus(w io.Writer, m exposition, now time.Time) {
	node, ver := "", ""
	for _, s := range m.series("herald_node_info") {
		node, ver = s.labels["node_id"], s.labels["version"]
	}
	up := "?"
	if start, ok := m.value("process_start_time_seconds"); ok {
		up = now.Sub(time.Unix(int64(start), 0)).Round(time.Second).String()
	}
	rss, _ := m.value("process_resident_memory_bytes")
	goroutines, _ := m.value("go_goroutines")
	fmt.Fprintf(w, "%s, node %s: up %s, RSS %.1f MiB, %.0f goroutines\n", ver, node, up, rss/(1<<20), goroutines)

	if healthy, ok := m.value("herald_cluster_healthy"); ok {
		state := "healthy"
		if healthy == 0 {
			state = "NOT HEARING THE CLUSTER (see /ready)"
		}
		nodes := m.series("herald_cluster_node_heartbeat_age_seconds")
		var names []string
		for _, s := range nodes {
			names = append(names, fmt.Sprintf("%s %.1fs ago", s.labels["node_id"], s.value))
		}
		sort.Strings(names)
		lag, _ := m.value("herald_redis_pubsub_lag_seconds")
		fmt.Fprintf(w, "cluster: %s, pub/sub lag %.1f ms, %d nodes: %s\n", state, lag*1000, len(nodes), strings.Join(names, ", "))
	} else {
		fmt.Fprintln(w, "cluster: none (a single node)")
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "app\tconnections\topened\tchannels\tsubscriptions\tmessages in\tmessages out\tslow consumers\trefused\t")
	for _, s := range m.series("herald_connections") {
		app := s.labels["app_id"]
		by := func(name string) float64 { return m.sum(name, "app_id", app) }
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", app, s.value,
			by("herald_connections_opened_total"), by("herald_channels"), by("herald_subscriptions"),
			by("herald_messages_received_total"), by("herald_messages_sent_total"),
			by("herald_slow_consumer_disconnects_total"), by("herald_refused_total"))
	}
	_ = tw.Flush()

	queued, _ := m.value("herald_webhook_queue_events")
	fmt.Fprintf(w, "webhooks: %.0f queued, %.0f delivered, %.0f failed attempts, %.0f dropped\n", queued,
		m.sum("herald_webhook_attempts_total", "outcome", "delivered"), m.sum("herald_webhook_attempts_total", "outcome", "failed"),
		m.sum("herald_webhook_dropped_events_total", "", ""))
}

// exposition is a Prometheus text scrape.
type exposition []sample

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

func (e exposition) series(name string) []sample {
	var out []sample
	for _, s := range e {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// value is the value of the unlabelled series name.
func (e exposition) value(name string) (float64, bool) {
	for _, s := range e {
		if s.name == name && len(s.labels) == 0 {
			return s.value, true
		}
	}
	return 0, false
}

// sum adds up name's series whose label has value (every series when label is empty).
func (e exposition) sum(name, label, value string) float64 {
	total := 0.0
	for _, s := range e.series(name) {
		if label == "" || s.labels[label] == value {
			total += s.value
		}
	}
	return total
}

// parseExposition reads a scrape in the Prometheus text format (with the Prometheus library's parser)
// into its counter, gauge and untyped series; histograms and summaries are not shown.
func parseExposition(r io.Reader) (exposition, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("malformed metrics: %w", err)
	}
	var out exposition
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			s := sample{name: name, labels: make(map[string]string, len(m.GetLabel())), value: v}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out = append(out, s)
		}
	}
	return out, nil
}
