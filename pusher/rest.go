package pusher

import "encoding/json"

// Bodies of the REST API under /apps/{app_id}. Maps are always encoded as objects, never as [], because
// the PHP and Go SDKs fail on an empty array where they expect an object.

// TriggerRequest is the body of POST /events and one element of POST /batch_events.
type TriggerRequest struct {
	Name string `json:"name"`
	// Data is normally a string; other JSON values are accepted and carried as their text. Nil means
	// the field was missing.
	Data     *Text    `json:"data"`
	Channels []string `json:"channels,omitempty"`
	// Channel is what pusher-http-php sends for a single channel, and the only form in a batch.
	Channel  string `json:"channel,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
	// Info asks for attributes of the channels published to: "user_count", "subscription_count".
	Info string `json:"info,omitempty"`
}

// BatchRequest is the body of POST /batch_events.
type BatchRequest struct {
	Batch []TriggerRequest `json:"batch"`
}

// ChannelAttributes are the per-channel attributes REST answers carry when asked through info.
type ChannelAttributes struct {
	UserCount         *int `json:"user_count,omitempty"`
	SubscriptionCount *int `json:"subscription_count,omitempty"`
}

// TriggerResponse answers POST /events: {} without info, else the attributes of each channel.
type TriggerResponse struct {
	Channels map[string]ChannelAttributes `json:"channels,omitempty"`
}

// BatchResponse answers POST /batch_events: {} when no event asked for info, else one entry per event.
type BatchResponse struct {
	Batch []ChannelAttributes `json:"batch,omitempty"`
}

// ChannelsResponse answers GET /channels with the occupied channels.
type ChannelsResponse struct {
	Channels map[string]ChannelAttributes `json:"channels"`
}

// ChannelResponse answers GET /channels/{name}. Cache is present only when info=cache was asked for,
// and is then null when nothing is cached.
type ChannelResponse struct {
	Occupied          bool        `json:"occupied"`
	UserCount         *int        `json:"user_count,omitempty"`
	SubscriptionCount *int        `json:"subscription_count,omitempty"`
	Cache             *CacheField `json:"cache,omitempty"`
}

// CacheField is the cache attribute: null when the channel has no cached event.
type CacheField struct{ Info *CacheInfo }

// MarshalJSON encodes the cached event's info, or null.
func (f CacheField) MarshalJSON() ([]byte, error) { return json.Marshal(f.Info) }

// UnmarshalJSON reads the cache attribute, null included.
func (f *CacheField) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &f.Info) }

// UsersResponse answers GET /channels/{name}/users.
type UsersResponse struct {
	Users []User `json:"users"`
}

// User is one distinct member of a presence channel.
type User struct {
	ID string `json:"id"`
}

// Info attributes a REST caller may ask for.
const (
	InfoUserCount         = "user_count"
	InfoSubscriptionCount = "subscription_count"
	InfoCache             = "cache"
)
