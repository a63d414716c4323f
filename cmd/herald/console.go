package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/console"
	"github.com/herald-rt/herald/pusher"
	"github.com/herald-rt/herald/webhooks"
)

// withConsole serves the debug console in front of the server's routes when it is on.
func (h *herald) withConsole(next http.Handler) http.Handler {
	if !h.o.Console {
		return next
	}
	c := console.New(console.Config{Server: h.srv, PathPrefix: h.o.PathPrefix, AdminToken: h.o.ConsoleToken, Logger: &h.log})
	h.log.Info().Bool("admin_token", h.o.ConsoleToken != "").Msg("debug console served on /console")
	return c.Wrap(next)
}

// webhookObserver tells the metrics (when on) and the console feed of every webhook attempt and
// drop. The dispatcher exists before the server the feed belongs to, which is set once it does.
type webhookObserver struct {
	metrics *metrics // nil: no metrics
	srv     atomic.Pointer[channels.Server]
}

// Attempt implements webhooks.Observer.
func (o *webhookObserver) Attempt(appID string, a webhooks.Attempt) {
	if o.metrics != nil {
		o.metrics.Attempt(appID, a)
	}
	srv := o.srv.Load()
	if srv == nil || !srv.Watching(appID) {
		return
	}
	e := channels.FeedEvent{Kind: channels.FeedWebhook, Code: a.Status, Event: webhookNames(a.Events)}
	if len(a.Events) > 0 {
		e.Channel = a.Events[0].Channel
	}
	e.Detail = fmt.Sprintf("attempt %d, %d ms, %s", a.N, a.Duration.Milliseconds(), a.URL)
	if a.Err != nil {
		e.Detail += ": " + a.Err.Error()
	}
	srv.Note(appID, e)
}

// Dropped implements webhooks.Observer.
func (o *webhookObserver) Dropped(appID string, reason webhooks.DropReason, events int) {
	if o.metrics != nil {
		o.metrics.Dropped(appID, reason, events)
	}
	if srv := o.srv.Load(); srv != nil && srv.Watching(appID) {
		srv.Note(appID, channels.FeedEvent{Kind: channels.FeedWebhook, Detail: fmt.Sprintf("%d dropped: %s", events, reason)})
	}
}

// webhookNames lists the names of a request's events, each once.
func webhookNames(events []pusher.WebhookEvent) string {
	var names []string
	for _, e := range events {
		if !slices.Contains(names, e.Name) {
			names = append(names, e.Name)
		}
	}
	return strings.Join(names, ",")
}
