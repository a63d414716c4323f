package pusher

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The reference decoders are the encoding/json code the fast path must agree with, kept free of the
// fast path: refText decodes through textOfJSON where Text would go through TextOf.

func refDecodeClientFrame(b []byte) (ClientFrame, *Error) {
	var f ClientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return f, &Error{Message: msgInvalidJSON}
	}
	if f.Event == "" {
		return f, &Error{Message: msgMissingEvent}
	}
	return f, nil
}

func refDecodeData(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := textOfJSON(bytes.TrimSpace(raw))
		if err != nil {
			return err
		}
		raw = []byte(s)
	}
	return json.Unmarshal(raw, v)
}

type refText string

func (t *refText) UnmarshalJSON(b []byte) error {
	s, err := textOfJSON(bytes.TrimSpace(b))
	*t = refText(s)
	if err != nil {
		*t = ""
	}
	return err
}

type refSubscribeData struct {
	Channel     string  `json:"channel"`
	Auth        string  `json:"auth"`
	ChannelData refText `json:"channel_data"`
}

type refSigninData struct {
	Auth     string  `json:"auth"`
	UserData refText `json:"user_data"`
}

// sameErr compares errors by message, in which encoding/json names the reference types.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == strings.NewReplacer("refSubscribeData", "SubscribeData", "refSigninData", "SigninData",
		"refText", "Text").Replace(b.Error())
}

// checkDecodeAgainstJSON runs every public decoder on b and fails unless each agrees with encoding/json
// in value and in error, and leaves b as it found it.
func checkDecodeAgainstJSON(t *testing.T, b []byte) {
	t.Helper()
	orig := bytes.Clone(b)
	f, perr := DecodeClientFrame(b)
	rf, rperr := refDecodeClientFrame(b)
	if f.Event != rf.Event || f.Channel != rf.Channel || !bytes.Equal(f.Data, rf.Data) || (f.Data == nil) != (rf.Data == nil) {
		t.Fatalf("DecodeClientFrame(%q) = %q %q %q, encoding/json %q %q %q", b, f.Event, f.Channel, f.Data, rf.Event, rf.Channel, rf.Data)
	}
	if (perr == nil) != (rperr == nil) || perr != nil && *perr != *rperr {
		t.Fatalf("DecodeClientFrame(%q) error = %v, encoding/json %v", b, perr, rperr)
	}
	checkDataAgainstJSON(t, b)
	if perr == nil {
		checkDataAgainstJSON(t, f.Data)
	}
	if !bytes.Equal(b, orig) {
		t.Fatalf("decoding modified its input %q to %q", orig, b)
	}
}

func checkDataAgainstJSON(t *testing.T, raw []byte) {
	t.Helper()
	s, err := TextOf(raw)
	rs, rerr := textOfJSON(bytes.TrimSpace(raw))
	if s != rs || !sameErr(err, rerr) {
		t.Fatalf("TextOf(%q) = %q, %v; encoding/json %q, %v", raw, s, err, rs, rerr)
	}
	// Prefilled, so that fields the data leaves out must keep their values.
	sub := SubscribeData{Channel: "c0", Auth: "a0", ChannelData: "d0"}
	rsub := refSubscribeData{Channel: "c0", Auth: "a0", ChannelData: "d0"}
	err, rerr = DecodeData(raw, &sub), refDecodeData(raw, &rsub)
	if sub.Channel != rsub.Channel || sub.Auth != rsub.Auth || string(sub.ChannelData) != string(rsub.ChannelData) || !sameErr(err, rerr) {
		t.Fatalf("DecodeData(%q, SubscribeData) = %+v, %v; encoding/json %+v, %v", raw, sub, err, rsub, rerr)
	}
	in := SigninData{Auth: "a0", UserData: "u0"}
	rin := refSigninData{Auth: "a0", UserData: "u0"}
	err, rerr = DecodeData(raw, &in), refDecodeData(raw, &rin)
	if in.Auth != rin.Auth || string(in.UserData) != string(rin.UserData) || !sameErr(err, rerr) {
		t.Fatalf("DecodeData(%q, SigninData) = %+v, %v; encoding/json %+v, %v", raw, in, err, rin, rerr)
	}
}

// FuzzDecodeFastPath checks the hand-written decoders against encoding/json on arbitrary bytes: the
// fast path must produce exactly encoding/json's result, or decline so that encoding/json runs.
func FuzzDecodeFastPath(f *testing.F) {
	f.Fuzz(checkDecodeAgainstJSON)
}

func TestDecodeFastPathAgreesWithJSON(t *testing.T) {
	for _, in := range fastPathCases {
		checkDecodeAgainstJSON(t, []byte(in.frame))
	}
}

// fastPathCases are frames and whether the fast path decodes them itself.
var fastPathCases = []struct {
	frame string
	fast  bool
}{
	{`{"event":"pusher:ping","data":{}}`, true},
	{`{"event":"pusher:ping"}`, true},
	{`{}`, true},
	{` {"data":"x" , "channel" :"private-a",` + "\n\t\r" + `"event":"client-a"} ` + "\n", true},
	{`{"event":"client-a","channel":"private-a","data":[1,-0.5e+3,true,false,null,"s",{"k":[]}]}`, true},
	{`{"event":"client-a","data":null}`, true},
	{`{"event":"client-\"q\" \\ \/ \b\f\n\r\t \u00e9 \u20AC \u0000"}`, true},
	{`{"event":"client-héllo ✓ 🎉"}`, true},
	{`{"event":"client-a","data":"` + "\xff" + `"}`, true}, // raw data keeps invalid UTF-8, as RawMessage does
	{`{"event":"client-a","data":` + strings.Repeat("[", maxFastDepth) + strings.Repeat("]", maxFastDepth) + `}`, true},

	{`{"event":"client-a","data":` + strings.Repeat("[", maxFastDepth+1) + strings.Repeat("]", maxFastDepth+1) + `}`, false},
	{`{"Event":"pusher:ping"}`, false},     // encoding/json matches keys case-insensitively
	{`{"event":"a","event":"b"}`, false},   // encoding/json keeps the last
	{`{"event":"a","user_id":"1"}`, false}, // unknown keys are skipped by encoding/json
	{`{"ev\u0065nt":"a"}`, false},
	{`{"event":"client-\ud83c\udf89"}`, false},   // surrogates
	{`{"event":"client-` + "\xff" + `"}`, false}, // encoding/json replaces invalid UTF-8
	{`{"event":null}`, false},
	{`{"event":5}`, false},
	{`{"event":"a","channel":null}`, false},
	{`{"event":"a"} x`, false},
	{`{"event":"a"}{}`, false},
	{`{"event":"a",}`, false},
	{`{"event":"a","data":01}`, false},
	{`{"event":"a","data":[1,]}`, false},
	{`{"event":"a","data":{"k"}}`, false},
	{`{"event":"a","data":"` + "\x01" + `"}`, false},
	{`{"event":"a","data":"\x"}`, false},
	{`{"event":"a","data":tru}`, false},
	{`[]`, false},
	{`null`, false},
	{`"x"`, false},
	{``, false},
	{"\u00a0{}", false},
}

func TestDecodeClientFrameFastDecisions(t *testing.T) {
	for _, tt := range fastPathCases {
		if _, ok := decodeClientFrameFast([]byte(tt.frame)); ok != tt.fast {
			t.Errorf("decodeClientFrameFast(%q) fast = %v, want %v", tt.frame, ok, tt.fast)
		}
	}
}

func TestTextOfFastDecisions(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" for declined
	}{
		{`"plain"`, "plain"},
		{`"{\"user_id\":\"1\"}"`, `{"user_id":"1"}`},
		{`{"a":[1,2],"b":{"c":null}}`, `{"a":[1,2],"b":{"c":null}}`},
		{`{"s":"has spaces, inside"}`, `{"s":"has spaces, inside"}`},
		{`-12.5e3`, `-12.5e3`},
		{`null`, `null`},

		{`{"a": 1}`, ""}, // json.Compact would remove the space
		{`[1 ,2]`, ""},
		{` "x"`, ""}, // TextOf trims before the fast path
		{`"x" `, ""},
		{`"\ud800"`, ""},
		{"\"\xff\"", ""},
		{`{"a":1}}`, ""},
		{`{"a":1`, ""},
		{`{broken`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		got, ok := textOfFast([]byte(tt.raw))
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("textOfFast(%s) = %q, %v; want %q", tt.raw, got, ok, tt.want)
		}
	}
}

func TestDecodeDataFastDecisions(t *testing.T) {
	tests := []struct {
		raw  string
		fast bool
	}{
		{`{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":\"1\"}"}`, true},
		{`"{\"channel\":\"presence-a\",\"auth\":\"k:s\",\"channel_data\":\"{\\\"user_id\\\":\\\"1\\\"}\"}"`, true},
		{`{"channel_data":{"user_id":"1"},"channel":"presence-a"}`, true},
		{`{"channel_data":null}`, true},
		{`{}`, true},

		{`{"channel_data":{"user_id": "1"}}`, false}, // Text is compacted
		{`{"Channel":"a"}`, false},
		{`{"channel":"a","channel":"b"}`, false},
		{`{"channel":1}`, false},
		{`{"channel":null}`, false},
		{`{"channel":"a","user_data":"x"}`, false},
		{`"{\"channel\":\"\ud800\"}"`, false},
		{`null`, false},
		{`"null"`, false},
	}
	for _, tt := range tests {
		d := SubscribeData{Channel: "c0"}
		if ok := decodeDataFast([]byte(tt.raw), &d); ok != tt.fast {
			t.Errorf("decodeDataFast(%s) fast = %v, want %v", tt.raw, ok, tt.fast)
		} else if !ok && d != (SubscribeData{Channel: "c0"}) {
			t.Errorf("decodeDataFast(%s) declined but wrote %+v", tt.raw, d)
		}
		checkDataAgainstJSON(t, []byte(tt.raw))
	}
	var in SigninData
	if !decodeDataFast([]byte(`{"user_data":"{\"id\":\"1\"}","auth":"k:s"}`), &in) || in.UserData != `{"id":"1"}` || in.Auth != "k:s" {
		t.Errorf("decodeDataFast(signin) = %+v", in)
	}
	var other struct{ Channel string }
	if decodeDataFast([]byte(`{"channel":"a"}`), &other) {
		t.Error("decodeDataFast decoded a type it does not know")
	}
	if decodeDataFast([]byte(`{"channel":"a"}`), (*SubscribeData)(nil)) {
		t.Error("decodeDataFast decoded into a nil pointer")
	}
}

// TestDecodeClientFrameInternsEvents checks that protocol event names cost no allocation.
func TestDecodeClientFrameInternsEvents(t *testing.T) {
	b := []byte(`{"event":"pusher:subscribe","data":{"channel":"a"}}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeClientFrame(b) }); n != 0 {
		t.Errorf("DecodeClientFrame(pusher:subscribe) allocates %v times, want 0", n)
	}
}
