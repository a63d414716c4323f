package redis

import (
	"bytes"
	"testing"

	"github.com/herald-rt/herald/channels"
)

// FuzzParseEnvelope: no message read from Redis pub/sub makes the parser panic, and whatever it
// accepts encodes back to the same bytes, so a node never delivers a frame other than the one sent.
func FuzzParseEnvelope(f *testing.F) {
	for _, m := range []channels.Message{
		{Frame: []byte(`{"event":"e","channel":"room","data":"{}"}`)},
		{Except: "123.456", Roster: 7, Frame: []byte(`{"event":"pusher_internal:member_added"}`)},
		{Terminate: true},
		{Cached: 3, Count: 9, Frame: []byte("line\nbreaks\nkept")},
		{Published: 1796674311000000000, Frame: []byte(`{}`)},
	} {
		f.Add(appendEnvelope(nil, &m))
	}
	f.Add([]byte("H1 0 - 1 2\n"))
	f.Add([]byte("H1 2 - 0 0 0\nx"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var m channels.Message
		if parseEnvelope(msg, &m) != nil {
			return
		}
		again := appendEnvelope(nil, &m)
		var m2 channels.Message
		if err := parseEnvelope(again, &m2); err != nil {
			t.Fatalf("re-encoded envelope %q does not parse: %v", again, err)
		}
		if !bytes.Equal(m2.Frame, m.Frame) || m2.Except != m.Except || m2.Terminate != m.Terminate ||
			m2.Roster != m.Roster || m2.Cached != m.Cached || m2.Count != m.Count || m2.Published != m.Published {
			t.Fatalf("%q parsed as %+v, re-encoded as %+v", msg, m, m2)
		}
	})
}
