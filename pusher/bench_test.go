package pusher

import (
	"fmt"
	"testing"
)

// benchPayload is ~200 bytes of event data as applications send it: JSON text, so every quote is
// escaped when it is carried as a JSON string.
const benchPayload = `{"id":"ord_8d1f2a","status":"shipped","total":{"amount":12999,"currency":"EUR"},` +
	`"items":[{"sku":"A-1001","qty":2},{"sku":"B-2002","qty":1}],"carrier":"dhl","eta":"2026-12-01T10:00:00Z"}`

// BenchmarkEventFrame encodes one published event, the work done once per publish whatever the
// number of subscribers.
func BenchmarkEventFrame(b *testing.B) {
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	for range b.N {
		_ = EventFrame("order-shipped", "private-orders-42", benchPayload, "")
	}
}

// BenchmarkAppendEvent is EventFrame into a reused buffer: the encoder alone, without the allocation.
func BenchmarkAppendEvent(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	for range b.N {
		buf = AppendEvent(buf[:0], "order-shipped", "private-orders-42", benchPayload, "")
	}
}

// Client frames as pusher-js sends them: a client event with ~100 bytes of object data, and a presence
// subscribe whose data is an object carrying channel_data as a string.
var (
	benchClientEvent = []byte(`{"event":"client-typing","channel":"presence-room-42","data":` +
		`{"user":"u_8d1f2a","typing":true,"at":"2026-12-01T10:00:00Z","draft":{"chars":42,"lang":"en"}}}`)
	benchPresenceSubscribe = []byte(`{"event":"pusher:subscribe","data":{"auth":"278d425bdf160c739803:` +
		`58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4","channel_data":` +
		`"{\"user_id\":\"u_8d1f2a\",\"user_info\":{\"name\":\"Ada\"}}","channel":"presence-room-42"}}`)
)

// BenchmarkDecodeClientFrame decodes one client frame, the first step of every inbound message.
func BenchmarkDecodeClientFrame(b *testing.B) {
	for _, bc := range []struct {
		name  string
		frame []byte
	}{{"client-event", benchClientEvent}, {"presence-subscribe", benchPresenceSubscribe}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.frame)))
			b.ReportAllocs()
			for range b.N {
				if _, perr := DecodeClientFrame(bc.frame); perr != nil {
					b.Fatal(perr)
				}
			}
		})
	}
}

// BenchmarkDecodeData decodes a presence subscribe's data, the second step of subscribing, with the
// data as pusher-js sends it (an object) and as some clients send it (a string holding the object).
func BenchmarkDecodeData(b *testing.B) {
	benchData(b, benchPresenceSubscribe, func(data []byte) error {
		var d SubscribeData
		if err := DecodeData(data, &d); err != nil || d.ChannelData == "" {
			return fmt.Errorf("decoded %+v, %v", d, err)
		}
		return nil
	})
}

// BenchmarkTextOf turns a client event's data into the string subscribers receive, the second step of
// relaying a client event: object data as pusher-js sends it, and data already sent as a string.
func BenchmarkTextOf(b *testing.B) {
	benchData(b, benchClientEvent, func(data []byte) error {
		_, err := TextOf(data)
		return err
	})
}

// benchData runs step on the data of frame, once as the object it holds and once as a string.
func benchData(b *testing.B, frame []byte, step func([]byte) error) {
	f, perr := DecodeClientFrame(frame)
	if perr != nil {
		b.Fatal(perr)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{{"object", f.Data}, {"string", AppendString(nil, string(f.Data))}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for range b.N {
				if err := step(bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
