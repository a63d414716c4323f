package pusher

import (
	"fmt"
	"time"
)

// App is one tenant: its credentials, switches and limits. Connections and REST calls always act
// within exactly one App.
type App struct {
	ID     string
	Key    string
	Secret string

	// Enabled false refuses connections (4003) and REST calls (403).
	Enabled bool
	// ClientEvents allows client- events on private and presence channels.
	ClientEvents bool
	// RequireTLS refuses plain-ws connections with 4000 (behind a TLS-terminating proxy the proxy's
	// X-Forwarded-Proto: https counts as TLS).
	RequireTLS bool
	// MaxConnections caps the app's open connections (4004 past it); 0 means unlimited.
	MaxConnections int
	// SubscriptionCount sends pusher_internal:subscription_count to the subscribers of public and
	// private channels whenever their number changes (Pusher's opt-in feature).
	SubscriptionCount bool
	// AuthorizationTimeout closes, with 4009, connections that neither sign in nor subscribe to a
	// private or presence channel within it; 0 means connections need not authorize.
	AuthorizationTimeout time.Duration
	// AllowedOrigins, when not empty, refuses WebSocket connections whose Origin header matches none
	// of its patterns (see OriginAllowed), with 4009. Empty: any origin.
	AllowedOrigins []string
	// PublishesPerSecond caps the app's REST events on each node (a batch counts each event): past
	// it a publish gets 429 with Retry-After. 0: no cap.
	PublishesPerSecond int
	// ConnectionsPerSecondPerIP caps the new connections one client address may open per second on
	// each node, a burst of ten times that allowed: past it 4100 (the SDKs back off). 0: no cap.
	ConnectionsPerSecondPerIP int

	Limits Limits
}

// Limits bound what one client or request may do. The zero value of each field means its default
// (see DefaultLimits), so a config only names what it changes.
type Limits struct {
	MaxChannelNameLength  int `json:"max_channel_name_length"`  // 164: Pusher's documented limit (SDKs allow 200; raise it if needed)
	MaxEventNameLength    int `json:"max_event_name_length"`    // 200
	MaxEventDataBytes     int `json:"max_event_data_bytes"`     // 10240: the data string of a REST event or a client event
	MaxChannelsPerEvent   int `json:"max_channels_per_event"`   // 100
	MaxBatchEvents        int `json:"max_batch_events"`         // 10
	MaxPresenceMembers    int `json:"max_presence_members"`     // 100 distinct users per presence channel
	MaxPresenceInfoBytes  int `json:"max_presence_info_bytes"`  // 1024: a member's user_info, serialised
	MaxUserIDLength       int `json:"max_user_id_length"`       // 128
	ClientEventsPerSecond int `json:"client_events_per_second"` // 10 per connection; past it pusher:error 4301, socket kept
	MaxChannelsPerSocket  int `json:"max_channels_per_socket"`  // 1000 subscriptions per connection, so no client grows a map without bound
	// SubscriptionsPerSecond bounds the subscribe requests of one connection: a burst of ten times
	// this many, then this many per second (past it pusher:error 4303 and a LimitReached
	// subscription_error, socket kept). Each new channel costs webhooks and store work, so an
	// anonymous client must not create channels as fast as it can send frames. Default 10.
	SubscriptionsPerSecond int `json:"subscriptions_per_second"`
}

// DefaultLimits are Pusher's published limits, plus Herald's own per-socket subscription cap.
func DefaultLimits() Limits {
	return Limits{
		MaxChannelNameLength:   164,
		MaxEventNameLength:     200,
		MaxEventDataBytes:      10240,
		MaxChannelsPerEvent:    100,
		MaxBatchEvents:         10,
		MaxPresenceMembers:     100,
		MaxPresenceInfoBytes:   1024,
		MaxUserIDLength:        128,
		ClientEventsPerSecond:  10,
		MaxChannelsPerSocket:   1000,
		SubscriptionsPerSecond: 10,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	defaults := d.fields()
	for i, f := range l.fields() {
		if *f.value == 0 {
			*f.value = *defaults[i].value
		}
	}
	return l
}

// limitField names one Limits field as config files spell it.
type limitField struct {
	name  string
	value *int
}

// fields lists every limit once, so defaults, validation and config share one list.
func (l *Limits) fields() []limitField {
	return []limitField{
		{"max_channel_name_length", &l.MaxChannelNameLength},
		{"max_event_name_length", &l.MaxEventNameLength},
		{"max_event_data_bytes", &l.MaxEventDataBytes},
		{"max_channels_per_event", &l.MaxChannelsPerEvent},
		{"max_batch_events", &l.MaxBatchEvents},
		{"max_presence_members", &l.MaxPresenceMembers},
		{"max_presence_info_bytes", &l.MaxPresenceInfoBytes},
		{"max_user_id_length", &l.MaxUserIDLength},
		{"client_events_per_second", &l.ClientEventsPerSecond},
		{"max_channels_per_socket", &l.MaxChannelsPerSocket},
		{"subscriptions_per_second", &l.SubscriptionsPerSecond},
	}
}

// Validate reports the first field of the app that cannot work, naming it.
func (a *App) Validate() error {
	switch {
	case a.ID == "":
		return fmt.Errorf("app: id is empty")
	case a.Key == "":
		return fmt.Errorf("app %q: key is empty", a.ID)
	case a.Secret == "":
		return fmt.Errorf("app %q: secret is empty", a.ID)
	case a.MaxConnections < 0:
		return fmt.Errorf("app %q: max_connections is negative", a.ID)
	case a.AuthorizationTimeout < 0:
		return fmt.Errorf("app %q: authorization_timeout is negative", a.ID)
	case a.PublishesPerSecond < 0:
		return fmt.Errorf("app %q: publishes_per_second is negative", a.ID)
	case a.ConnectionsPerSecondPerIP < 0:
		return fmt.Errorf("app %q: connections_per_second_per_ip is negative", a.ID)
	}
	for _, p := range a.AllowedOrigins {
		if err := validOriginPattern(p); err != nil {
			return fmt.Errorf("app %q: allowed_origins: %w", a.ID, err)
		}
	}
	for _, f := range a.Limits.fields() {
		if *f.value < 0 {
			return fmt.Errorf("app %q: %s is negative", a.ID, f.name)
		}
	}
	return nil
}
