package clients

import (
	"testing"

	"github.com/herald-rt/herald/pusher"
)

// eventSeeds are server frames of every shape: what Herald sends, what other servers send, and
// what no server should send.
var eventSeeds = []string{
	`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`,
	`{"event":"client-x","channel":"presence-a","data":"{\"a\":\"\\u00e9\\n\\\"q\\\"\"}","user_id":"42"}`,
	`{"event":"pusher:error","data":{"code":4001,"message":"nope"}}`,
	`{"event":"pusher:error","data":{"code":null,"message":"Received invalid JSON"}}`,
	` { "event" : "e" , "data" : "" } `,
	`{"event":"e","data":null}`,
	`{"event":"e","data":42}`,
	`{"event":"e"}`,
	`{"event":"","data":"x"}`,
	`{"data":"x"}`,
	`{}`,
	`[]`,
	`not json`,
	`{"event":"e","data":"x"} trailing`,
	`{"event":"e","data":"x",}`,
	`{"event":"e","extra":"s","more":{"n":1}}`,
	`{"Event":"e","DATA":"x"}`,
	`{"\u0065vent":"e"}`,
	`{"event":"e","data":"\ud83d\ude00 \ud83d \udc00 \u2028 \/ \b\f\r\t"}`,
	"{\"event\":\"e\",\"data\":\"\xff\xfe\"}",
	"{\"event\":\"e\",\"data\":\"a\tb\"}",
	`{"event":"e","data":"\x"}`,
	`{"event":"e","data":"\u12"}`,
	`{"event":"a","event":"b","data":"1","data":"2"}`,
	`{"event":"e","user_id":7}`,
	`{"event":"0","":"\0"}`,
}

func TestDecodeEvent(t *testing.T) {
	for _, tc := range []struct {
		frame        string
		want         Event
		dataIsString bool
	}{
		{eventSeeds[1], Event{Event: "client-x", Channel: "presence-a", Data: "{\"a\":\"\\u00e9\\n\\\"q\\\"\"}", UserID: "42"}, true},
		{eventSeeds[2], Event{Event: "pusher:error", Data: `{"code":4001,"message":"nope"}`}, false},
		{eventSeeds[5], Event{Event: "e"}, false},
		{eventSeeds[7], Event{Event: "e"}, false},
		{eventSeeds[8], Event{Data: eventSeeds[8]}, false},
		{eventSeeds[12], Event{Data: "not json"}, false},
		{eventSeeds[18], Event{Event: "e", Data: "😀 \uFFFD \uFFFD \u2028 / \b\f\r\t"}, true},
		{eventSeeds[19], Event{Event: "e", Data: "\uFFFD\uFFFD"}, true},
		{eventSeeds[23], Event{Event: "b", Data: "2"}, true},
		{eventSeeds[24], Event{Data: eventSeeds[24]}, false}, // a numeric user_id is a server bug: shown raw
		{string(pusher.EventFrame("e", "c", "d\u2028\x01", "u")), Event{Event: "e", Channel: "c", Data: "d\u2028\x01", UserID: "u"}, true},
	} {
		ev, isString := decodeEvent([]byte(tc.frame))
		if ev != tc.want || isString != tc.dataIsString {
			t.Errorf("decodeEvent(%s) = %+v, %v; want %+v, %v", tc.frame, ev, isString, tc.want, tc.dataIsString)
		}
	}
}

// FuzzDecodeEvent holds the fast decoder to encoding/json's answer wherever it gives one.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, sawData, ok := decodeEventFast(b)
		if !ok {
			return
		}
		want, wantString := decodeEventJSON(b)
		if ev != want || sawData != wantString {
			t.Fatalf("fast %+v, %v; encoding/json %+v, %v", ev, sawData, want, wantString)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	frame := pusher.EventFrame("price", "ticker-eurusd", `{"bid":1.08412,"ask":1.08415,"ts":1767225600123456789}`, "")
	b.ReportAllocs()
	for b.Loop() {
		decodeEvent(frame)
	}
}
