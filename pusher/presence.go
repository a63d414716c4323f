package pusher

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Member is one user in a presence channel. Info is the user_info JSON exactly as given, or nil.
type Member struct {
	UserID string
	Info   json.RawMessage
}

// ParseChannelData reads a presence subscription's channel_data: a JSON object with user_id (a string,
// or a number normalised to its decimal text) and optional user_info of at most maxInfoBytes.
func ParseChannelData(channelData string, limits Limits) (Member, *Error) {
	var d struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(channelData), &d); err != nil {
		return Member{}, Errorf("Invalid channel_data: must be a JSON object with a user_id")
	}
	id, err := userIDOf(d.UserID)
	if err != nil {
		return Member{}, err
	}
	return NewMember(id, d.UserInfo, limits)
}

// NewMember checks a member's id and info against the limits.
func NewMember(userID string, info json.RawMessage, limits Limits) (Member, *Error) {
	if userID == "" {
		return Member{}, Errorf("Invalid channel_data: user_id must be a non-empty string")
	}
	if len(userID) > limits.MaxUserIDLength {
		return Member{}, LimitError(400, "user_id is longer than %d characters", limits.MaxUserIDLength)
	}
	if len(info) > limits.MaxPresenceInfoBytes {
		return Member{}, LimitError(413, "user_info is larger than %d bytes", limits.MaxPresenceInfoBytes)
	}
	if bytes.Equal(info, []byte("null")) {
		info = nil
	}
	return Member{UserID: userID, Info: info}, nil
}

// userIDOf accepts a JSON string, or a JSON integer that older backends send, as its decimal text.
func userIDOf(raw json.RawMessage) (string, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return string(raw), nil
	}
	return "", Errorf("Invalid channel_data: user_id must be a non-empty string")
}

// PresenceData encodes subscription_succeeded's data for a presence channel: the distinct ids, the
// id → user_info hash (an object even when empty) and the count. Every SDK reads a different part.
func PresenceData(members []Member) string {
	b := make([]byte, 0, 48+len(members)*32)
	b = append(b, `{"presence":{"ids":[`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.UserID)
	}
	b = append(b, `],"hash":{`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.UserID)
		b = append(b, ':')
		b = appendInfo(b, m.Info)
	}
	b = append(b, `},"count":`...)
	b = strconv.AppendInt(b, int64(len(members)), 10)
	return string(append(b, "}}"...))
}

// MemberAddedData encodes member_added's data, {"user_id":…,"user_info":…}.
func MemberAddedData(m Member) string {
	b := make([]byte, 0, 32+len(m.UserID)+len(m.Info))
	b = append(b, `{"user_id":`...)
	b = AppendString(b, m.UserID)
	b = append(b, `,"user_info":`...)
	b = appendInfo(b, m.Info)
	return string(append(b, '}'))
}

// MemberRemovedData encodes member_removed's data, {"user_id":…}.
func MemberRemovedData(userID string) string {
	return string(append(AppendString([]byte(`{"user_id":`), userID), '}'))
}

func appendInfo(b []byte, info json.RawMessage) []byte {
	if len(info) == 0 {
		return append(b, "null"...)
	}
	return append(b, info...)
}
