package channels

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sort"

	"github.com/herald-rt/herald/pusher"
)

// What a debug console reads of the server besides the feed (see Watch). Each covers every node:
// they read the cluster's stores, as the REST API does.

// ErrUnknownApp is returned for an app id the server does not serve.
var ErrUnknownApp = errors.New("unknown app id")

// AppIDs lists the apps served, sorted.
func (s *Server) AppIDs() []string {
	apps := s.apps.Load().all()
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	sort.Strings(ids)
	return ids
}

// Secret returns an app's secret, for a console to check a sign-in and sign its session with; a
// console never shows it.
func (s *Server) Secret(appID string) (string, bool) {
	a := s.apps.Load().byID[appID]
	if a == nil {
		return "", false
	}
	return a.Secret, true
}

// ListChannels describes every occupied channel of the app, cluster-wide, with presence channels'
// member counts.
func (s *Server) ListChannels(ctx context.Context, appID string) ([]ChannelInfo, error) {
	if s.apps.Load().byID[appID] == nil {
		return nil, ErrUnknownApp
	}
	return s.store.List(ctx, appID, "", true)
}

// Members returns a presence channel's members, cluster-wide.
func (s *Server) Members(ctx context.Context, appID, channel string) (Roster, error) {
	if s.apps.Load().byID[appID] == nil {
		return Roster{}, ErrUnknownApp
	}
	return s.store.Members(ctx, appID, channel)
}

// Trigger publishes an event through the REST API's path: the same checks (a *pusher.Error when one
// fails), the same encoding, cache and broker, and the same feed event.
func (s *Server) Trigger(ctx context.Context, appID, channel, event, data string) error {
	a := s.apps.Load().byID[appID]
	if a == nil {
		return ErrUnknownApp
	}
	text := pusher.Text(data)
	t, perr := validateTrigger(a, pusher.TriggerRequest{Name: event, Channel: channel, Data: &text}, false)
	if perr != nil {
		return perr
	}
	return s.publishTrigger(ctx, a, t)
}

// ClientIP is the address a request came from, behind the trusted proxies (see
// Config.TrustedProxies).
func (s *Server) ClientIP(r *http.Request) netip.Addr { return s.clientIP(r) }
