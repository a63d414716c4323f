package pusher

import (
	"encoding/json"
	"strconv"
)

// MaxWatchlist is how many user ids a watchlist may hold; ids past it are ignored and the client is
// told with a non-fatal 4302.
const MaxWatchlist = 100

// SigninData is the data of pusher:signin. UserData is the exact string the signature covers.
type SigninData struct {
	Auth     string `json:"auth"`
	UserData Text   `json:"user_data"`
}

// UserData is what a signed-in socket says about its user: a string id, optional user_info (used as
// presence info when a presence subscription carries no channel_data) and an optional watchlist.
type UserData struct {
	ID        string
	Info      json.RawMessage
	Watchlist []string
}

// ParseUserData reads user_data: a JSON object whose id is a non-empty string (pusher-js and Java
// reject anything else) that ValidateSigninID accepts, with the limits of presence members applied
// to id and user_info.
func ParseUserData(userData string, limits Limits) (UserData, *Error) {
	var d struct {
		ID        json.RawMessage `json:"id"`
		UserInfo  json.RawMessage `json:"user_info"`
		Watchlist []string        `json:"watchlist"`
	}
	if err := json.Unmarshal([]byte(userData), &d); err != nil {
		return UserData{}, Errorf("Invalid user_data: must be a JSON object with a string id")
	}
	var id string
	if len(d.ID) == 0 || d.ID[0] != '"' || json.Unmarshal(d.ID, &id) != nil || id == "" {
		return UserData{}, Errorf("Invalid user_data: id must be a non-empty string")
	}
	m, perr := NewMember(id, d.UserInfo, limits)
	if perr != nil {
		return UserData{}, perr
	}
	if perr := ValidateSigninID(id, limits); perr != nil {
		return UserData{}, perr
	}
	return UserData{ID: m.UserID, Info: m.Info, Watchlist: d.Watchlist}, nil
}

// ValidateSigninID refuses a sign-in id that the app's backend could not reach. A signed-in user is
// reached through its channel #server-to-user-<id>: sendToUser publishes to it, and
// terminate_connections closes the sockets that joined it. So an id is accepted only if that
// channel is a valid channel name, by the very rule REST publishes are checked with: the characters
// A–Z a–z 0–9 _ - = @ , . ; and a length within max_channel_name_length.
//
// Refusing, rather than widening what the REST API accepts, follows the server SDKs. pusher-http-php
// validates "#server-to-user-<id>" against that same character set in sendToUser before sending,
// so no other id can ever be sent to from PHP, whatever Herald accepts. pusher-http-node checks
// only that the id is a non-empty string, in authenticateUser, sendToUser and
// terminateUserConnections alike, but both SDKs put the id into the terminate path unescaped, so an
// id with '/', '?', '#' or '%' never reaches its route. Both SDKs' authenticateUser sign any
// non-empty id, so without this check a user would be signed in whom the backend can neither
// message nor disconnect, and would learn it only from a 400 on the first sendToUser. Inside the
// set, every call of both SDKs works. Presence user_ids are not concerned: no API addresses them.
func ValidateSigninID(id string, limits Limits) *Error {
	if ValidateChannelName(ServerToUserPrefix+id, limits.MaxChannelNameLength) == nil {
		return nil
	}
	return Errorf("Invalid user_data: id %q cannot be reached by sendToUser or terminate_connections: "+
		"use at most %d of A-Z a-z 0-9 _ - = @ , . ;", Truncate(id, 64),
		min(limits.MaxUserIDLength, limits.MaxChannelNameLength-len(ServerToUserPrefix)))
}

// SigninSuccessFrame echoes user_data exactly as received; the SDKs parse it and read id.
func SigninSuccessFrame(userData string) []byte {
	data := append(AppendString([]byte(`{"user_data":`), userData), '}')
	return EventFrame(EventSigninSuccess, "", string(data), "")
}

// WatchlistFrame encodes pusher_internal:watchlist_events in the one shape pusher-js understands:
// {"events":[{"name":"online","user_ids":[…]},{"name":"offline","user_ids":[…]}]}, empty groups left out.
func WatchlistFrame(online, offline []string) []byte {
	b := []byte(`{"events":[`)
	first := true
	for _, group := range []struct {
		name string
		ids  []string
	}{{"online", online}, {"offline", offline}} {
		if len(group.ids) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"name":`...)
		b = AppendString(b, group.name)
		b = append(b, `,"user_ids":[`...)
		for i, id := range group.ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, id)
		}
		b = append(b, "]}"...)
	}
	return EventFrame(EventWatchlist, "", string(append(b, "]}"...)), "")
}

// SubscriptionCountFrame encodes pusher_internal:subscription_count for a channel.
func SubscriptionCountFrame(channel string, count int) []byte {
	data := strconv.AppendInt([]byte(`{"subscription_count":`), int64(count), 10)
	return EventFrame(EventSubscriptionCount, channel, string(append(data, '}')), "")
}

// CacheMissFrame tells a subscriber of a cache channel that nothing is cached.
func CacheMissFrame(channel string) []byte { return EventFrame(EventCacheMiss, channel, "{}", "") }

// UserStatusResponse answers Herald's GET /apps/{app_id}/users/{user_id}: whether the user is signed
// in on at least one connection, and on how many.
type UserStatusResponse struct {
	ID          string `json:"id"`
	Online      bool   `json:"online"`
	Connections int    `json:"connections"`
}

// CacheInfo is the cache attribute of GET /channels/{name}?info=cache.
type CacheInfo struct {
	Data string `json:"data"`
	TTL  int    `json:"ttl"`
}
