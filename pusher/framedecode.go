package pusher

import "unicode/utf8"

// The fast path of client-frame decoding. encoding/json costs about a tenth of the CPU of relaying a
// client event and doubles the read goroutine's stack, yet nearly every frame has one of a few flat
// shapes: {"event","channel","data"} and the subscribe and signin data objects. The scanner below
// decodes exactly those shapes and declines everything else (ok == false), and the callers in frame.go
// then run encoding/json as before. The contract is that the fast path returns exactly what encoding/json
// would, or nothing: keys must be spelled exactly (encoding/json also matches them case-insensitively)
// and appear once (encoding/json keeps the last), string fields must be strings (not null, not numbers)
// whose decoding needs no U+FFFD replacement, and the input must be one valid JSON value. It scans
// iteratively, never recursing, and allocates little beyond the strings it returns.

// maxFastDepth is the deepest nesting the fast path validates; deeper values (encoding/json allows
// 10000 levels) are left to encoding/json so that the nesting stack stays a few words.
const maxFastDepth = 512

// Keys of the objects the fast path decodes, in the order of their values in objectFields' spans.
var (
	frameKeys     = [...]string{"event", "channel", "data"}
	subscribeKeys = [...]string{"channel", "auth", "channel_data"}
	signinKeys    = [...]string{"auth", "user_data"}
)

// decodeClientFrameFast decodes a frame of the common shape. Data aliases b.
func decodeClientFrameFast(b []byte) (f ClientFrame, ok bool) {
	var spans [len(frameKeys)]span
	if !objectFields(b, frameKeys[:], spans[:]) ||
		!setString(&f.Event, b, spans[0], true) || !setString(&f.Channel, b, spans[1], false) {
		return ClientFrame{}, false
	}
	f.Data = spans[2].of(b)
	return f, true
}

// textOfFast is TextOf for a string whose decoding needs no replacement, and for any other value that
// is already compact. raw must be trimmed.
func textOfFast(raw []byte) (string, bool) {
	if len(raw) > 0 && raw[0] == '"' {
		return stringValue(raw, false)
	}
	end, spaced := scanValue(raw, 0)
	if end != len(raw) || spaced {
		return "", false
	}
	return string(raw), true
}

// decodeDataFast is DecodeData for the data of pusher:subscribe, pusher:unsubscribe and pusher:signin.
// raw must be trimmed. Like encoding/json it sets only the fields the data names, and it sets none
// when it declines.
func decodeDataFast(raw []byte, v any) bool {
	switch v.(type) {
	case *SubscribeData, *SigninData:
	default:
		return false
	}
	if len(raw) > 0 && raw[0] == '"' {
		var buf [unquoteBuffer]byte
		var ok bool
		if raw, ok = unquote(raw, buf[:0]); !ok {
			return false
		}
	}
	switch d := v.(type) {
	case *SubscribeData:
		var spans [len(subscribeKeys)]span
		if d == nil || !objectFields(raw, subscribeKeys[:], spans[:]) {
			return false
		}
		out := *d
		if !setString(&out.Channel, raw, spans[0], false) || !setString(&out.Auth, raw, spans[1], false) ||
			!setText(&out.ChannelData, raw, spans[2]) {
			return false
		}
		*d = out
	case *SigninData:
		var spans [len(signinKeys)]span
		if d == nil || !objectFields(raw, signinKeys[:], spans[:]) {
			return false
		}
		out := *d
		if !setString(&out.Auth, raw, spans[0], false) || !setText(&out.UserData, raw, spans[1]) {
			return false
		}
		*d = out
	}
	return true
}

// setString decodes the string value at s into dst, leaving dst alone when the value is absent.
func setString(dst *string, b []byte, s span, intern bool) bool {
	if s.end == 0 {
		return true
	}
	v, ok := stringValue(s.of(b), intern)
	*dst = v
	return ok
}

// setText decodes the value at s into dst as Text, leaving dst alone when the value is absent.
func setText(dst *Text, b []byte, s span) bool {
	if s.end == 0 {
		return true
	}
	v, ok := textOfFast(s.of(b))
	*dst = Text(v)
	return ok
}

// span is where a raw value lies in its input; the zero span is an absent value (no value is empty).
// objectFields reports spans rather than subslices so that a decoding buffer on the stack stays there.
type span struct{ start, end int }

// of returns the value's bytes, nil when absent, with no spare capacity to append over the input.
func (s span) of(b []byte) []byte {
	if s.end == 0 {
		return nil
	}
	return b[s.start:s.end:s.end]
}

// objectFields splits b, one JSON object with optional surrounding whitespace, into the raw values of
// its keys: spans[i] locates the value of keys[i]. It declines any other key, a repeated key, a key
// spelled with escapes, and anything that is not exactly one valid object.
func objectFields(b []byte, keys []string, spans []span) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, escaped, _ := scanString(b, i)
		if end < 0 || escaped {
			return false
		}
		k := keyIndex(keys, b[i+1:end-1])
		if k < 0 || spans[k].end != 0 {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		end, _ = scanValue(b, i)
		if end < 0 {
			return false
		}
		spans[k] = span{i, end}
		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func keyIndex(keys []string, key []byte) int {
	for i, k := range keys {
		if string(key) == k {
			return i
		}
	}
	return -1
}

// stringValue decodes raw, exactly one JSON string. It declines escapes it does not handle (surrogate
// halves) and invalid UTF-8, which encoding/json would replace. With intern, the protocol's own event
// names come back as constants, without an allocation.
func stringValue(raw []byte, intern bool) (string, bool) {
	var buf [unquoteBuffer]byte
	s, ok := unquote(raw, buf[:0])
	if !ok {
		return "", false
	}
	if intern {
		switch string(s) {
		case EventPing:
			return EventPing, true
		case EventPong:
			return EventPong, true
		case EventSubscribe:
			return EventSubscribe, true
		case EventUnsubscribe:
			return EventUnsubscribe, true
		case EventSignin:
			return EventSignin, true
		}
	}
	return string(s), true
}

// unquoteBuffer is the size of the stack buffers strings with escapes are decoded into, enough for
// typical channel_data and user_data: the string made from it is then their only allocation.
const unquoteBuffer = 256

// unquote returns the contents of raw, exactly one JSON string: a subslice of raw when it has no
// escapes, else the decoding appended to buf.
func unquote(raw, buf []byte) ([]byte, bool) {
	end, escaped, high := scanString(raw, 0)
	if end != len(raw) {
		return nil, false
	}
	s := raw[1 : end-1]
	if !escaped {
		return s, !high || utf8.Valid(s)
	}
	out := buf
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != '\\' {
			j++
		}
		if high && !utf8.Valid(s[i:j]) {
			return nil, false
		}
		out = append(out, s[i:j]...)
		if j == len(s) {
			break
		}
		// scanString has checked the escape's syntax.
		switch c := s[j+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hexValue(s[j+2])<<12 | hexValue(s[j+3])<<8 | hexValue(s[j+4])<<4 | hexValue(s[j+5]))
			if r >= 0xD800 && r <= 0xDFFF {
				return nil, false // a surrogate half: encoding/json pairs or replaces it
			}
			out = utf8.AppendRune(out, r)
			j += 4
		}
		i = j + 2
	}
	return out, true
}

// scanString checks the JSON string starting at b[i] == '"' and returns the index just past its closing
// quote, or -1. escaped reports a backslash and high a byte of 0x80 or more (possibly invalid UTF-8,
// which JSON syntax does not reject).
func scanString(b []byte, i int) (end int, escaped, high bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, high
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return -1, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1, false, false
				}
				i += 5
			default:
				return -1, false, false
			}
		case c < 0x20:
			return -1, false, false
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	return -1, false, false
}

// scanValue checks the JSON value starting at b[i] and returns the index just past it, or -1 for
// invalid JSON and for nesting deeper than maxFastDepth. spaced reports whitespace inside the value,
// which json.Compact would remove.
func scanValue(b []byte, i int) (end int, spaced bool) {
	var stack [maxFastDepth / 64]uint64 // bit set: the open container at that depth is an object
	depth := 0
	inObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	space := func(i int) int {
		j := skipSpace(b, i)
		spaced = spaced || j != i
		return j
	}
	// key reads `"name" :` and the space after it, returning where the member's value starts.
	key := func(i int) int {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		if i, _, _ = scanString(b, i); i < 0 {
			return -1
		}
		if i = space(i); i >= len(b) || b[i] != ':' {
			return -1
		}
		return space(i + 1)
	}
	for {
		// A value starts at b[i].
		if i < 0 || i >= len(b) {
			return -1, false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == maxFastDepth {
				return -1, false
			}
			if c == '{' {
				stack[depth/64] |= 1 << (depth % 64)
			} else {
				stack[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = space(i + 1)
			if i < len(b) && b[i] == c+2 { // '}' and ']' are two past '{' and '['
				i++
				depth--
				break
			}
			if c == '{' {
				i = key(i)
			}
			continue
		case c == '"':
			i, _, _ = scanString(b, i)
		case c == '-' || c >= '0' && c <= '9':
			i = scanNumber(b, i)
		case c == 't':
			i = literal(b, i, "true")
		case c == 'f':
			i = literal(b, i, "false")
		case c == 'n':
			i = literal(b, i, "null")
		default:
			return -1, false
		}
		// A value ended at b[i]: close containers until one continues with another member.
		for {
			if i < 0 {
				return -1, false
			}
			if depth == 0 {
				return i, spaced
			}
			if i = space(i); i >= len(b) {
				return -1, false
			}
			obj := inObject()
			if b[i] == ',' {
				i = space(i + 1)
				if obj {
					i = key(i)
				}
				break
			}
			if obj && b[i] == '}' || !obj && b[i] == ']' {
				i++
				depth--
				continue
			}
			return -1, false
		}
	}
}

// scanNumber returns the index just past the JSON number starting at b[i], or -1.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipSpace skips JSON's four whitespace characters.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexValue(c byte) int {
	switch {
	case c <= '9':
		return int(c - '0')
	case c <= 'F':
		return int(c - 'A' + 10)
	default:
		return int(c - 'a' + 10)
	}
}
