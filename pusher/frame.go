package pusher

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// ClientFrame is one message from a client: {"event":…, "channel"?:…, "data"?:…}. Data returned by
// DecodeClientFrame may alias the frame's bytes, which the read loop reuses for the next frame: use it
// before the handler returns and copy whatever must outlive it (TextOf and DecodeData return copies).
type ClientFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Messages of the non-fatal frame errors, in Pusher's wording where Pusher has one.
const (
	msgInvalidJSON  = "Received invalid JSON"
	msgMissingEvent = "Received a message without an event name"
)

// DecodeClientFrame parses one text frame. Failures are non-fatal errors (code null): the protocol
// answers them with pusher:error and keeps the connection.
func DecodeClientFrame(b []byte) (ClientFrame, *Error) {
	f, ok := decodeClientFrameFast(b)
	if !ok {
		var err error
		if f, err = unmarshalClientFrame(b); err != nil {
			return f, &Error{Message: msgInvalidJSON}
		}
	}
	if f.Event == "" {
		return f, &Error{Message: msgMissingEvent}
	}
	return f, nil
}

// unmarshalClientFrame is the reference decoding, for the frames decodeClientFrameFast declines. It
// is a function of its own so that the frame the fast path returns stays off the heap.
func unmarshalClientFrame(b []byte) (ClientFrame, error) {
	var f ClientFrame
	err := json.Unmarshal(b, &f)
	return f, err
}

// Text is a JSON value carried as text, the way Pusher carries event data: a JSON string decodes to
// its contents and any other JSON value to its compact encoding. It encodes as a JSON string.
type Text string

// UnmarshalJSON accepts a string or any other JSON value.
func (t *Text) UnmarshalJSON(b []byte) error {
	s, err := TextOf(b)
	if err != nil {
		return err
	}
	*t = Text(s)
	return nil
}

// TextOf returns the text of a raw JSON value: a string's contents, or any other value compacted.
// Clients send data as objects or as strings holding JSON, and both must reach subscribers as strings.
func TextOf(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if s, ok := textOfFast(raw); ok {
		return s, nil
	}
	return textOfJSON(raw)
}

// textOfJSON is TextOf by encoding/json alone: what the fast path must agree with (its fuzz oracle),
// and what runs where it declines. raw must be trimmed.
func textOfJSON(raw []byte) (string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// DecodeData decodes a frame's data into v, whether the client sent an object or a string holding one.
func DecodeData(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if decodeDataFast(raw, v) {
		return nil
	}
	if len(raw) > 0 && raw[0] == '"' {
		s, err := TextOf(raw)
		if err != nil {
			return err
		}
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}

// SubscribeData is the data of pusher:subscribe. Auth and ChannelData are empty for public channels;
// ChannelData is the exact string the presence signature covers.
type SubscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData Text   `json:"channel_data"`
}

// AppendEvent appends the encoding of a server→client event whose data is a JSON string. Channel and
// userID are omitted when empty. This is the one encoder of channel events: a publish is encoded once
// and the same bytes go to every subscriber.
func AppendEvent(dst []byte, event, channel, data, userID string) []byte {
	dst = append(dst, `{"event":`...)
	dst = AppendString(dst, event)
	if channel != "" {
		dst = append(dst, `,"channel":`...)
		dst = AppendString(dst, channel)
	}
	dst = append(dst, `,"data":`...)
	dst = AppendString(dst, data)
	if userID != "" {
		dst = append(dst, `,"user_id":`...)
		dst = AppendString(dst, userID)
	}
	return append(dst, '}')
}

// EventFrame returns a freshly allocated encoded event (see AppendEvent).
func EventFrame(event, channel, data, userID string) []byte {
	n := 40 + len(event) + len(channel) + len(data) + len(data)/8 + len(userID)
	return AppendEvent(make([]byte, 0, n), event, channel, data, userID)
}

// ErrorFrame encodes pusher:error; unlike every other event its data is an object, with a null code
// for non-fatal errors (Swift only parses the object form).
func ErrorFrame(e *Error) []byte {
	b := make([]byte, 0, 64+len(e.Message))
	b = append(b, `{"event":"pusher:error","data":{"code":`...)
	if e.Code == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(e.Code), 10)
	}
	b = append(b, `,"message":`...)
	b = AppendString(b, e.Message)
	return append(b, "}}"...)
}

// PongFrame answers pusher:ping. It is shared: frames are never modified after encoding.
var PongFrame = []byte(`{"event":"pusher:pong","data":"{}"}`)

// ConnectionEstablishedFrame is the first frame of every connection.
func ConnectionEstablishedFrame(socketID string, activityTimeoutSeconds int) []byte {
	data := `{"socket_id":"` + socketID + `","activity_timeout":` + strconv.Itoa(activityTimeoutSeconds) + `}`
	return EventFrame(EventConnectionEstablished, "", data, "")
}

// SubscriptionErrorFrame is the channel-scoped report of a failed subscription that pusher-js,
// Laravel Echo, Java and Swift deliver to pusher:subscription_error listeners.
func SubscriptionErrorFrame(channel string, e *Error) []byte {
	data := make([]byte, 0, 64+len(e.Message))
	data = append(data, `{"type":`...)
	data = AppendString(data, e.SubscriptionType())
	data = append(data, `,"error":`...)
	data = AppendString(data, e.Message)
	data = append(data, `,"status":`...)
	data = strconv.AppendInt(data, int64(e.HTTPStatus()), 10)
	data = append(data, '}')
	return EventFrame(EventSubscriptionError, channel, string(data), "")
}
