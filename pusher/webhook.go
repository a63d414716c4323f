package pusher

// Webhook names: the seven lifecycle events Pusher posts to an app's webhook endpoints.
const (
	WebhookChannelOccupied   = "channel_occupied"
	WebhookChannelVacated    = "channel_vacated"
	WebhookMemberAdded       = "member_added"
	WebhookMemberRemoved     = "member_removed"
	WebhookClientEvent       = "client_event"
	WebhookCacheMiss         = "cache_miss"
	WebhookSubscriptionCount = "subscription_count"
)

// WebhookEvent is one event of a webhook body. Every field but SubscriptionCount is a string, and
// channel is always present: pusher-http-go unmarshals into string fields and pusher-http-php reads
// channel on every event, so any other type would make them reject the whole request.
type WebhookEvent struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	// UserID is set on member_added, member_removed, and client_event on presence channels.
	UserID string `json:"user_id,omitempty"`
	// Event, Data and SocketID are set on client_event.
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
	// SubscriptionCount is set on subscription_count.
	SubscriptionCount *int `json:"subscription_count,omitempty"`
}

// Webhook is the body of one webhook request: time_ms is integer milliseconds (Go SDKs decode it
// into an int), events is one event, or several when batching.
type Webhook struct {
	TimeMs int64          `json:"time_ms"`
	Events []WebhookEvent `json:"events"`
}
