package pusher

import (
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

// benchClientFrame is a client event as pusher-js sends it: data as an object.
var benchClientFrame = []byte(`{"event":"client-typing","channel":"presence-room-42","data":` + benchPayload + `}`)

// BenchmarkDecodeClientFrame decodes one client frame, the first step of every inbound message.
func BenchmarkDecodeClientFrame(b *testing.B) {
	b.SetBytes(int64(len(benchClientFrame)))
	b.ReportAllocs()
	for range b.N {
		if _, perr := DecodeClientFrame(benchClientFrame); perr != nil {
			b.Fatal(perr)
		}
	}
}

// BenchmarkTextOf turns a client event's object data into the string subscribers receive, the second
// step of relaying a client event.
func BenchmarkTextOf(b *testing.B) {
	f, perr := DecodeClientFrame(benchClientFrame)
	if perr != nil {
		b.Fatal(perr)
	}
	b.SetBytes(int64(len(f.Data)))
	b.ReportAllocs()
	for range b.N {
		if _, err := TextOf(f.Data); err != nil {
			b.Fatal(err)
		}
	}
}
