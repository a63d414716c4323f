package pusher

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeClientFrame(t *testing.T) {
	tests := []struct {
		in      string
		event   string
		wantErr string
	}{
		{`{"event":"pusher:ping","data":{}}`, EventPing, ""},
		{`{"event":"pusher:ping"}`, EventPing, ""},
		{`{"event":"pusher:ping","data":"{}"}`, EventPing, ""},
		{`not json`, "", msgInvalidJSON},
		{`{"event":5}`, "", msgInvalidJSON},
		{`[]`, "", msgInvalidJSON},
		{`{"data":{}}`, "", msgMissingEvent},
		{`{"event":""}`, "", msgMissingEvent},
	}
	for _, tt := range tests {
		f, err := DecodeClientFrame([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || err.Message != tt.wantErr || err.Code != 0 {
				t.Errorf("DecodeClientFrame(%s) error = %v, want non-fatal %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || f.Event != tt.event {
			t.Errorf("DecodeClientFrame(%s) = %q, %v; want %q", tt.in, f.Event, err, tt.event)
		}
	}
}

func TestDecodeDataAcceptsObjectOrString(t *testing.T) {
	for _, raw := range []string{
		`{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":\"1\"}"}`,
		`"{\"channel\":\"presence-a\",\"auth\":\"k:s\",\"channel_data\":\"{\\\"user_id\\\":\\\"1\\\"}\"}"`,
	} {
		var d SubscribeData
		if err := DecodeData(json.RawMessage(raw), &d); err != nil {
			t.Fatalf("DecodeData(%s): %v", raw, err)
		}
		if d.Channel != "presence-a" || d.Auth != "k:s" || d.ChannelData != `{"user_id":"1"}` {
			t.Errorf("DecodeData(%s) = %+v", raw, d)
		}
	}
}

func TestTextOf(t *testing.T) {
	tests := map[string]string{
		`"plain"`:             "plain",
		`"{\"a\":1}"`:         `{"a":1}`,
		`{ "a" : [1, 2] }`:    `{"a":[1,2]}`,
		`42`:                  `42`,
		`  "padded"  `:        "padded",
		`{"nested":{"x":""}}`: `{"nested":{"x":""}}`,
	}
	for in, want := range tests {
		if got, err := TextOf(json.RawMessage(in)); err != nil || got != want {
			t.Errorf("TextOf(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := TextOf(json.RawMessage(`{broken`)); err == nil {
		t.Error("TextOf accepted broken JSON")
	}
}

// decodeServerFrame is what every SDK does with a server frame: parse the envelope, and data as a string.
func decodeServerFrame(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s is not JSON: %v", b, err)
	}
	return m
}

func TestEventFrameShape(t *testing.T) {
	m := decodeServerFrame(t, EventFrame("client-typing", "presence-chat", `{"x":"\"q\""}`, "42"))
	if m["event"] != "client-typing" || m["channel"] != "presence-chat" || m["user_id"] != "42" {
		t.Errorf("fields = %v", m)
	}
	if m["data"] != `{"x":"\"q\""}` {
		t.Errorf("data = %#v, want the string unchanged", m["data"])
	}
	m = decodeServerFrame(t, EventFrame(EventPong, "", "{}", ""))
	if _, ok := m["channel"]; ok {
		t.Error("connection-scoped event carries a channel")
	}
	if _, ok := m["user_id"]; ok {
		t.Error("event without a user carries user_id")
	}
}

func TestConnectionEstablishedFrame(t *testing.T) {
	m := decodeServerFrame(t, ConnectionEstablishedFrame("123.456", 120))
	data, ok := m["data"].(string)
	if !ok || m["event"] != EventConnectionEstablished {
		t.Fatalf("frame = %v, want string data", m)
	}
	var d struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil || d.SocketID != "123.456" || d.ActivityTimeout != 120 {
		t.Errorf("data = %s (%v)", data, err)
	}
}

func TestErrorFrameDataIsAnObject(t *testing.T) {
	m := decodeServerFrame(t, ErrorFrame(Errorf("bad \"thing\"")))
	d, ok := m["data"].(map[string]any)
	if !ok || d["code"] != nil || d["message"] != `bad "thing"` {
		t.Errorf("non-fatal error frame = %v", m)
	}
	m = decodeServerFrame(t, ErrorFrame(CloseError(CodeAppNotFound, "nope")))
	if d := m["data"].(map[string]any); d["code"] != float64(4001) {
		t.Errorf("fatal error frame = %v", m)
	}
}

func TestSubscriptionErrorFrame(t *testing.T) {
	m := decodeServerFrame(t, SubscriptionErrorFrame("private-a", AuthError("Invalid signature")))
	var d struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(m["data"].(string)), &d); err != nil {
		t.Fatal(err)
	}
	if m["channel"] != "private-a" || d.Type != TypeAuthError || d.Status != 401 || d.Error != "Invalid signature" {
		t.Errorf("subscription_error = %v / %+v", m, d)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"héllo wörld ✓ 🎉", "\u2028\u2029", "bad \xff utf8 \xc3", strings.Repeat("x", 1000),
	} {
		checkAppendString(t, s)
	}
}

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	b := AppendString(nil, s)
	var back string
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, b, err)
	}
	var want string // encoding/json's reading of s: s itself, invalid bytes replaced by U+FFFD
	enc, _ := json.Marshal(s)
	_ = json.Unmarshal(enc, &want)
	if back != want {
		t.Errorf("AppendString(%q) round-trips to %q, want %q", s, back, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00", "\u2028", "\xff\xfe", "🎉"} {
		f.Add(s)
	}
	f.Fuzz(checkAppendString)
}

// FuzzDecodeClientFrame feeds arbitrary bytes through everything the read loop does with a frame:
// it must never panic, and whatever decodes must re-encode into valid JSON.
func FuzzDecodeClientFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClientFrame(b)
		if err != nil {
			if err.Closes() {
				t.Fatalf("a frame error closes the connection: %v", err)
			}
			return
		}
		var d SubscribeData
		_ = DecodeData(fr.Data, &d)
		_ = ValidateChannelName(d.Channel, 164)
		_, _ = ParseChannelData(string(d.ChannelData), DefaultLimits())
		data, terr := TextOf(fr.Data)
		if terr != nil {
			return
		}
		out := EventFrame(fr.Event, fr.Channel, data, "")
		if !json.Valid(out) {
			t.Fatalf("EventFrame produced invalid JSON %q", out)
		}
	})
}
