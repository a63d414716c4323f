package pusher

// Event names of the protocol. Names starting with "pusher:" or "pusher_internal:" are reserved:
// applications may neither publish nor bind them as their own events.
const (
	EventConnectionEstablished = "pusher:connection_established"
	EventError                 = "pusher:error"
	EventPing                  = "pusher:ping"
	EventPong                  = "pusher:pong"
	EventSubscribe             = "pusher:subscribe"
	EventUnsubscribe           = "pusher:unsubscribe"
	EventSignin                = "pusher:signin"
	EventSigninSuccess         = "pusher:signin_success"
	EventCacheMiss             = "pusher:cache_miss"
	EventSubscriptionError     = "pusher:subscription_error"

	EventSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	EventMemberAdded           = "pusher_internal:member_added"
	EventMemberRemoved         = "pusher_internal:member_removed"
	EventSubscriptionCount     = "pusher_internal:subscription_count"
	EventWatchlist             = "pusher_internal:watchlist_events"
)

// ClientEventPrefix starts every event a client may send to other clients.
const ClientEventPrefix = "client-"

// IsReserved reports whether an event name belongs to the protocol itself.
func IsReserved(event string) bool {
	return hasPrefix(event, "pusher:") || hasPrefix(event, "pusher_internal:")
}

// IsClientEvent reports whether an event name is one clients may send to each other.
func IsClientEvent(event string) bool { return hasPrefix(event, ClientEventPrefix) }

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }
