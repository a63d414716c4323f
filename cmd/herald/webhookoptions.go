package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/webhooks"
)

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

// webhookConfig turns options into the webhooks package's Config. A delay or retry window of 0
// seconds means none, which the package spells as a negative duration.
func (o *options) webhookConfig(log *zerolog.Logger) webhooks.Config {
	cfg := webhooks.Config{
		RemovalDelay: o.WebhookDelay.duration(),
		Timeout:      o.WebhookTimeout.duration(),
		RetryFor:     o.WebhookRetryFor.duration(),
		Logger:       log,
	}
	if cfg.RemovalDelay == 0 {
		cfg.RemovalDelay = -1
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = -1
	}
	for _, a := range o.apps() {
		cfg.Apps = append(cfg.Apps, a.webhookApp())
	}
	return cfg
}
