package clients

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/herald-rt/herald/pusher"
)

// Event is one message from the server. Channel and UserID are empty when the frame had none.
//
// Data is the event's data as text: the contents of the JSON string that carries it on every event but
// pusher:error, and for pusher:error (whose data is an object) the object's JSON text. A frame that is
// not a JSON object with an event name arrives with an empty Event and the whole frame in Data, so a
// test sees what the server sent instead of losing it.
type Event struct {
	Event   string
	Channel string
	Data    string
	UserID  string
}

// PusherError returns the failure an event reports: Code and Message of a pusher:error (Code 0 for
// null), or Type, Message and Status of a pusher:subscription_error. ok is false for other events and
// for data that does not decode.
func (e Event) PusherError() (pe *pusher.Error, ok bool) {
	switch e.Event {
	case pusher.EventError:
		var d struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(e.Data), &d) != nil {
			return nil, false
		}
		pe = &pusher.Error{Message: d.Message}
		if d.Code != nil {
			pe.Code = *d.Code
		}
		return pe, true
	case pusher.EventSubscriptionError:
		var d struct {
			Type   string `json:"type"`
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(e.Data), &d) != nil {
			return nil, false
		}
		return &pusher.Error{Message: d.Error, Status: d.Status, Type: d.Type}, true
	}
	return nil, false
}

// wireEvent is a server frame as sent.
type wireEvent struct {
	Event   string   `json:"event"`
	Channel string   `json:"channel"`
	Data    wireData `json:"data"`
	UserID  string   `json:"user_id"`
}

// wireData keeps a frame's data as text and remembers whether it came as a JSON string, which the
// protocol requires of every event but pusher:error.
type wireData struct {
	text     string
	isString bool
}

func (d *wireData) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		d.isString = true
		return json.Unmarshal(b, &d.text)
	}
	if string(b) != "null" {
		d.text = string(b)
	}
	return nil
}

// decodeEvent parses one text frame; see Event for frames that do not parse. dataIsString reports
// whether the data field was a JSON string. Server frames take the fast path; anything it does not
// handle goes through encoding/json, which defines the result (the fuzz test holds both to it).
func decodeEvent(b []byte) (ev Event, dataIsString bool) {
	if ev, sawData, ok := decodeEventFast(b); ok {
		return ev, sawData
	}
	return decodeEventJSON(b)
}

// decodeEventJSON is the reference decoder.
func decodeEventJSON(b []byte) (ev Event, dataIsString bool) {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil || w.Event == "" {
		return Event{Data: string(b)}, false
	}
	return Event{Event: w.Event, Channel: w.Channel, Data: w.Data.text, UserID: w.UserID}, w.Data.isString
}

// decodeEventFast decodes a flat JSON object whose values are all strings, which is every server
// frame but pusher:error, with one allocation per field kept instead of encoding/json's ten. sawData
// reports a data field. It gives up (ok false) on anything else: other value types, escaped or
// case-folded keys, invalid UTF-8, a missing or empty event, malformed JSON.
func decodeEventFast(b []byte) (ev Event, sawData, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Event{}, false, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return Event{}, false, false // no event name
	}
	for {
		key, next, ok := rawString(b, i)
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return Event{}, false, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return Event{}, false, false
		}
		i = skipSpace(b, i+1)
		raw, next, ok := rawString(b, i)
		if !ok {
			return Event{}, false, false // not a string, or not valid JSON
		}
		var field *string
		switch string(key) {
		case "event":
			field = &ev.Event
		case "channel":
			field = &ev.Channel
		case "data":
			field, sawData = &ev.Data, true
		case "user_id":
			field = &ev.UserID
		default:
			if !asciiOnly(key) {
				return Event{}, false, false // encoding/json folds non-ASCII keys too
			}
			for _, k := range [...]string{"event", "channel", "data", "user_id"} {
				if strings.EqualFold(string(key), k) {
					return Event{}, false, false // encoding/json matches keys case-insensitively
				}
			}
		}
		if field == nil {
			field = new(string) // unknown keys are ignored, but their value must still be valid
		}
		if *field, ok = unquote(raw); !ok {
			return Event{}, false, false
		}
		i = skipSpace(b, next)
		if i >= len(b) {
			return Event{}, false, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return Event{}, false, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) || ev.Event == "" {
		return Event{}, false, false
	}
	return ev, sawData, true
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// rawString returns the contents of the JSON string starting at b[i] (still escaped) and the index
// after its closing quote. It fails on anything but a string and on control characters.
func rawString(b []byte, i int) (raw []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\':
			j++ // skip the escaped byte; unquote checks the escape
		case c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// unquote decodes the contents of a JSON string as encoding/json does; it fails on invalid UTF-8 so
// that the reference decoder handles (and replaces) it.
func unquote(raw []byte) (string, bool) {
	if !utf8.Valid(raw) {
		return "", false
	}
	esc := bytes.IndexByte(raw, '\\')
	if esc < 0 {
		return string(raw), true
	}
	var out strings.Builder
	out.Grow(len(raw))
	for esc >= 0 {
		out.Write(raw[:esc])
		raw = raw[esc:]
		if len(raw) < 2 {
			return "", false
		}
		n := 2
		switch raw[1] {
		case '"', '\\', '/':
			out.WriteByte(raw[1])
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, ok := hex4(raw, 2)
			if !ok {
				return "", false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				r2, ok := hex4(raw, 8)
				if dec := utf16.DecodeRune(r, r2); ok && raw[6] == '\\' && raw[7] == 'u' && dec != utf8.RuneError {
					r, n = dec, 12
				} else {
					r = utf8.RuneError
				}
			}
			out.WriteRune(r)
		default:
			return "", false
		}
		raw = raw[n:]
		esc = bytes.IndexByte(raw, '\\')
	}
	out.Write(raw)
	return out.String(), true
}

// hex4 reads the four hex digits of a \u escape at raw[i:].
func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
