package channels

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// The benchmarks here measure the server's own work per operation — decode, hub, queue, writer
// goroutine — with a transport that discards what it is given, so sockets and the client are not in
// the numbers (herald-bench measures those end to end). Every operation waits until the writers have
// handed every frame it caused to the transport, so ns/op includes the asynchronous writer work.

// benchSink counts the frames the discard transports of one benchmark were handed.
type benchSink struct {
	wrote  atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func newBenchSink() *benchSink { return &benchSink{done: make(chan struct{}, 1)} }

func (k *benchSink) wrote1() {
	if k.wrote.Add(1) == k.target.Load() {
		k.done <- struct{}{}
	}
}

// expect arms the sink for n more frames; wait then returns once they have all been written.
func (k *benchSink) expect(n int) {
	k.target.Store(k.wrote.Load() + int64(n))
}

func (k *benchSink) wait(tb testing.TB) {
	select {
	case <-k.done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("writers stalled: %d frames written, waiting for %d", k.wrote.Load(), k.target.Load())
	}
}

// discardTransport accepts every write at once and counts its text frames.
type discardTransport struct {
	fakeSocket
	sink *benchSink
}

func (d *discardTransport) Write(frames ...ws.Frame) error {
	for _, f := range frames {
		if f.Op == ws.OpText {
			d.sink.wrote1()
		}
	}
	return nil
}

func (d *discardTransport) TryWrite(f ws.Frame) (bool, error) { return true, d.Write(f) }

// newBenchServer is newTestServer for benchmarks, with the client-event rate limit lifted so a
// relay can run b.N times.
func newBenchServer(b *testing.B) *Server {
	b.Helper()
	app := pusher.App{ID: testAppID, Key: testKey, Secret: testSecret, Enabled: true, ClientEvents: true,
		Limits: pusher.Limits{ClientEventsPerSecond: 1 << 30, SubscriptionsPerSecond: 1 << 20}}
	s, err := New(Config{Apps: []pusher.App{app}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// newBenchConn admits a connection on a discard transport, as newTestConn does on a fake one.
func newBenchConn(b *testing.B, s *Server, sink *benchSink) *Conn {
	b.Helper()
	d := &discardTransport{fakeSocket: newFakeSocket(), sink: sink}
	c := newConn(s, d)
	c.app = s.apps.Load().byKey[testKey]
	if perr := s.conns.register(c, 0); perr != nil {
		b.Fatal(perr)
	}
	c.out.wrote(true, nil)
	b.Cleanup(func() {
		_ = d.Close()
		c.unregister()
		c.cleanup()
	})
	return c
}

// benchSubscribe builds the pusher:subscribe frame a client would send, signed for c.
func benchSubscribe(c *Conn, channel, channelData string) []byte {
	b := append([]byte(nil), `{"event":"pusher:subscribe","data":{"channel":`...)
	b = pusher.AppendString(b, channel)
	if kind, _ := pusher.KindOf(channel); kind.NeedsSignature() {
		b = append(b, `,"auth":`...)
		b = pusher.AppendString(b, auth.SignChannel(testKey, testSecret, c.id, channel, channelData))
	}
	if channelData != "" {
		b = append(b, `,"channel_data":`...)
		b = pusher.AppendString(b, channelData)
	}
	return append(b, "}}"...)
}

// subscribeAll subscribes n new connections to channel and waits for what each subscription writes:
// its subscription_succeeded and, on a presence channel (channelData non-nil, one user per
// connection), member_added to each connection already there.
func subscribeAll(b *testing.B, s *Server, sink *benchSink, n int, channel string, channelData func(i int) string) []*Conn {
	b.Helper()
	conns := make([]*Conn, n)
	for i := range conns {
		c := newBenchConn(b, s, sink)
		data, frames := "", 1
		if channelData != nil {
			data, frames = channelData(i), 1+i
		}
		sink.expect(frames)
		c.handleFrame(benchSubscribe(c, channel, data))
		sink.wait(b)
		conns[i] = c
	}
	return conns
}

// payload200 is event data of about 200 bytes, JSON text as applications send it.
var payload200 = `{"id":"ord_8d1f2a","status":"shipped","total":{"amount":12999,"currency":"EUR"},` +
	`"items":[{"sku":"A-1001","qty":2},{"sku":"B-2002","qty":1}],"carrier":"dhl","eta":"2026-12-01T10:00:00Z"}`

// BenchmarkFanout publishes one 200-byte event to a channel of N subscribers through s.publish and
// waits until every subscriber's writer has written it: the server's whole cost of a REST trigger
// after decoding, per event; ns/delivery divides it by N.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			s := newBenchServer(b)
			sink := newBenchSink()
			subscribeAll(b, s, sink, n, "orders", nil)
			frame := pusher.EventFrame("order-shipped", "orders", payload200, "")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sink.expect(n)
				s.publish(Message{AppID: testAppID, Channel: "orders", Frame: frame})
				sink.wait(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkFanoutWatched is BenchmarkFanout through the REST publish path (publishTrigger), with and
// without a console watching the app: what the feed adds to a publish is one event, whatever the
// fan-out, and nothing while nobody watches.
func BenchmarkFanoutWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run("watched="+strconv.FormatBool(watched), func(b *testing.B) {
			const n = 1000
			s := newBenchServer(b)
			sink := newBenchSink()
			subscribeAll(b, s, sink, n, "orders", nil)
			if watched {
				w, err := s.Watch(b.Context(), testAppID)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				go func() { // the console's reader
					for range w.C {
					}
				}()
			}
			a := s.apps.Load().byID[testAppID]
			t := trigger{name: "order-shipped", data: payload200, channels: []string{"orders"}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sink.expect(n)
				if err := s.publishTrigger(b.Context(), a, t); err != nil {
					b.Fatal(err)
				}
				sink.wait(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkPresenceJoinLeave has one socket join and leave a presence channel of M members through
// handleFrame: signature check, presence store, subscription_succeeded with the member list to the
// joiner, member_added and member_removed to the M others.
func BenchmarkPresenceJoinLeave(b *testing.B) {
	for _, m := range []int{10, 99} {
		b.Run("members="+strconv.Itoa(m), func(b *testing.B) {
			s := newBenchServer(b)
			sink := newBenchSink()
			const channel = "presence-room"
			info := func(i int) string {
				return `{"user_id":"user-` + strconv.Itoa(i) + `","user_info":{"name":"User ` + strconv.Itoa(i) + `"}}`
			}
			subscribeAll(b, s, sink, m, channel, info)
			joiner := newBenchConn(b, s, sink)
			join := benchSubscribe(joiner, channel, `{"user_id":"joiner","user_info":{"name":"Joiner"}}`)
			leave := []byte(`{"event":"pusher:unsubscribe","data":{"channel":"` + channel + `"}}`)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				sink.expect(1 + 2*m)
				joiner.handleFrame(join)
				joiner.handleFrame(leave)
				sink.wait(b)
			}
		})
	}
}

// BenchmarkClientEventRelay has one socket of a private channel send a client event with ~200 bytes
// of data (an object, as pusher-js sends it) through handleFrame, relayed to the one other subscriber.
func BenchmarkClientEventRelay(b *testing.B) {
	s := newBenchServer(b)
	sink := newBenchSink()
	const channel = "private-chat"
	conns := subscribeAll(b, s, sink, 2, channel, nil)
	frame := []byte(`{"event":"client-typing","channel":"` + channel + `","data":` + payload200 + `}`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sink.expect(1)
		conns[0].handleFrame(frame)
		sink.wait(b)
	}
}
