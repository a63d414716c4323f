package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/webhooks"
)

// metrics is Herald's Prometheus registry. Counts the server keeps anyway (connections, messages,
// bytes, refusals, webhook queues, the cluster's health) are read from the server at scrape time by
// a collector, so the hot path pays nothing for them beyond the atomic adds it makes regardless;
// distributions (REST and webhook latency, sampled publish latency) are observed as they happen.
type metrics struct {
	reg *prometheus.Registry

	restRequests    *prometheus.CounterVec
	restDuration    *prometheus.HistogramVec
	publishDelivery prometheus.Histogram
	webhookAttempts *prometheus.CounterVec
	webhookDuration prometheus.Histogram
	webhookDropped  *prometheus.CounterVec
}

const namespace = "herald"

func newMetrics(h *herald) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.restRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rest_requests_total",
		Help: "REST API requests, by app, route and status."}, []string{"app_id", "route", "status"})
	m.restDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "rest_request_duration_seconds",
		Help: "REST API request duration, by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"})
	m.publishDelivery = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "publish_delivery_seconds",
		Help:    "Time from a REST publish to its frame being handed to every subscriber on this node, for one publish in 64.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_attempts_total",
		Help: "Webhook requests, by app and outcome (delivered: 2xx; failed: anything else, retried until the window ends)."},
		[]string{"app_id", "outcome"})
	m.webhookDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "webhook_attempt_duration_seconds",
		Help: "Webhook request duration.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)})
	m.webhookDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_dropped_events_total",
		Help: "Webhook events given up on, by app and reason."}, []string{"app_id", "reason"})
	m.reg.MustRegister(m.restRequests, m.restDuration, m.publishDelivery, m.webhookAttempts, m.webhookDuration,
		m.webhookDropped, &serverCollector{h: h},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// REST implements channels.Observer.
func (m *metrics) REST(appID, route string, status int, d time.Duration) {
	m.restRequests.WithLabelValues(appID, route, strconv.Itoa(status)).Inc()
	m.restDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Delivered implements channels.Observer.
func (m *metrics) Delivered(_ string, d time.Duration) { m.publishDelivery.Observe(d.Seconds()) }

// Attempt implements webhooks.Observer.
func (m *metrics) Attempt(appID string, a webhooks.Attempt) {
	outcome := "failed"
	if a.Err == nil {
		outcome = "delivered"
	}
	m.webhookAttempts.WithLabelValues(appID, outcome).Inc()
	m.webhookDuration.Observe(a.Duration.Seconds())
}

// Dropped implements webhooks.Observer.
func (m *metrics) Dropped(appID string, reason webhooks.DropReason, events int) {
	m.webhookDropped.WithLabelValues(appID, string(reason)).Add(float64(events))
}

// listen serves /metrics on addr, until the returned server is closed.
func (m *metrics) listen(addr string) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr(), nil
}

// serverCollector reads the server's, the dispatcher's and the cluster's counters at scrape time.
type serverCollector struct{ h *herald }

var (
	descConnections   = desc("connections", "Open WebSocket connections on this node.", "app_id")
	descOpened        = desc("connections_opened_total", "Connections admitted.", "app_id")
	descClosed        = desc("connections_closed_total", "Connections closed, by close code (the server's if it closed first, else the client's; 0: dropped without a close frame).", "app_id", "code")
	descMessagesIn    = desc("messages_received_total", "Text frames received from clients.", "app_id")
	descBytesIn       = desc("received_bytes_total", "Bytes of the text frames received from clients.", "app_id")
	descMessagesOut   = desc("messages_sent_total", "Frames handed to subscribers by publishes.", "app_id")
	descBytesOut      = desc("sent_bytes_total", "Bytes of the frames handed to subscribers by publishes.", "app_id")
	descChannels      = desc("channels", "Channels with a subscriber on this node.", "app_id")
	descSubscriptions = desc("subscriptions", "Subscriptions on this node.", "app_id")
	descSlow          = desc("slow_consumer_disconnects_total", "Clients disconnected (4100) because their backlog passed max_queue_bytes.", "app_id")
	descRefused       = desc("refused_total", "Requests refused by a rate limit or an access rule, by reason.", "app_id", "reason")
	descHookQueue     = desc("webhook_queue_events", "Webhook events waiting in endpoint queues.")
	descHookBacklog   = desc("webhook_backlogged_endpoints", "Webhook endpoints backlogged (sent several events per request).")
	descHookCoalesced = desc("webhook_coalesced_events_total", "Webhook events made moot while they waited (a rise cancelled by its fall, a newer count).")
	descHealthy       = desc("cluster_healthy", "1 while this node hears the cluster through Redis pub/sub (see /ready), 0 otherwise.")
	descReconnects    = desc("redis_pubsub_reconnects_total", "Redis pub/sub connections made after the first.")
	descPubErrors     = desc("redis_publish_errors_total", "Publishes Redis did not take (the REST call got 503).")
	descProbeLag      = desc("redis_pubsub_lag_seconds", "Round trip of the last probe through Redis pub/sub.")
	descInboxBytes    = desc("redis_inbox_bytes", "Bytes received from Redis pub/sub and not yet delivered.")
	descInboxDropped  = desc("redis_inbox_dropped_total", "Messages dropped because this node could not deliver as fast as the cluster published.")
	descMended        = desc("cluster_records_mended_total", "Redis records the anti-entropy pass mended.")
	descNodeInfo      = desc("node_info", "This node: its id and version (always 1).", "node_id", "version")
	descNodeAge       = desc("cluster_node_heartbeat_age_seconds", "Time since each node of the cluster last beat, as Redis records it.", "node_id")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descOpened, descClosed, descMessagesIn, descBytesIn,
		descMessagesOut, descBytesOut, descChannels, descSubscriptions, descSlow, descRefused, descHookQueue,
		descHookBacklog, descHookCoalesced, descHealthy, descReconnects, descPubErrors, descProbeLag,
		descInboxBytes, descInboxDropped, descMended, descNodeInfo, descNodeAge} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, a := range c.h.srv.AppStats() {
		gauge(descConnections, float64(a.Connections), a.AppID)
		counter(descOpened, a.Opened, a.AppID)
		for code, n := range a.Closed {
			counter(descClosed, n, a.AppID, strconv.Itoa(code))
		}
		counter(descMessagesIn, a.MessagesIn, a.AppID)
		counter(descBytesIn, a.BytesIn, a.AppID)
		counter(descMessagesOut, a.MessagesOut, a.AppID)
		counter(descBytesOut, a.BytesOut, a.AppID)
		gauge(descChannels, float64(a.Channels), a.AppID)
		gauge(descSubscriptions, float64(a.Subscriptions), a.AppID)
		counter(descSlow, a.SlowConsumers, a.AppID)
		for reason, n := range a.Refused {
			counter(descRefused, n, a.AppID, reason)
		}
	}
	gauge(descNodeInfo, 1, c.h.o.nodeID(), versionString())
	hs := c.h.hooks.Stats()
	gauge(descHookQueue, float64(hs.Queued))
	gauge(descHookBacklog, float64(hs.Backlogged))
	counter(descHookCoalesced, hs.Coalesced)
	if c.h.cluster != nil {
		cs := c.h.cluster.Stats()
		healthy := 0.0
		if cs.Healthy {
			healthy = 1
		}
		gauge(descHealthy, healthy)
		counter(descReconnects, cs.PubSubReconnects)
		counter(descPubErrors, cs.PublishErrors)
		gauge(descProbeLag, cs.ProbeLag.Seconds())
		gauge(descInboxBytes, float64(cs.InboxBytes))
		counter(descInboxDropped, cs.InboxDropped)
		counter(descMended, cs.Mended)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if nodes, err := c.h.cluster.Nodes(ctx); err == nil {
			for id, beat := range nodes {
				gauge(descNodeAge, time.Since(beat).Seconds(), id)
			}
		}
	}
}

var (
	_ channels.Observer = (*metrics)(nil)
	_ webhooks.Observer = (*metrics)(nil)
)
