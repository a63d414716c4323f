package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-rt/herald/channels/internal/wstest"
)

var clientFrame = wstest.Frame

// streamConn is a net.Conn that reads from a byte stream, at most chunk bytes per Read (to exercise
// frames split across reads), and records what is written.
type streamConn struct {
	net.Conn
	r     io.Reader
	chunk int
	out   bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}
func (c *streamConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
func (c *streamConn) Close() error                     { return nil }

func socketOver(stream []byte, chunk int) *Socket {
	return newSocket(&streamConn{r: bytes.NewReader(stream), chunk: chunk}, nil, nil, Options{WriteTimeout: time.Second})
}

func TestSocketReadsMessagesAndControlFrames(t *testing.T) {
	long := strings.Repeat("x", 70000) // a 64-bit length
	var stream []byte
	stream = append(stream, clientFrame(true, OpText, []byte(`{"event":"a"}`))...)
	stream = append(stream, clientFrame(false, OpText, []byte(`{"event":`))...)
	stream = append(stream, clientFrame(true, OpPing, []byte("p"))...) // between fragments
	stream = append(stream, clientFrame(false, OpContinuation, []byte(`"b"`))...)
	stream = append(stream, clientFrame(true, OpContinuation, []byte(`}`))...)
	stream = append(stream, clientFrame(true, OpText, []byte(long))...)
	stream = append(stream, clientFrame(true, OpBinary, []byte{0, 1, 2})...)
	stream = append(stream, clientFrame(true, OpClose, ClosePayload(1000, "bye"))...)
	want := []Message{
		{Op: OpText, Data: []byte(`{"event":"a"}`)},
		{Op: OpPing, Data: []byte("p")},
		{Op: OpText, Data: []byte(`{"event":"b"}`)},
		{Op: OpText, Data: []byte(long)},
		{Op: OpBinary, Data: []byte{0, 1, 2}},
		{Op: OpClose, Data: ClosePayload(1000, "bye")},
	}
	for _, chunk := range []int{0, 1, 7} {
		s := socketOver(stream, chunk)
		for i, w := range want {
			m, err := s.Next(100000, 1<<20)
			if err != nil {
				t.Fatalf("chunk %d, message %d: %v", chunk, i, err)
			}
			if m.Op != w.Op || !bytes.Equal(m.Data, w.Data) || m.TooBig {
				t.Fatalf("chunk %d, message %d = op %d %.40q tooBig=%v, want op %d %.40q", chunk, i, m.Op, m.Data, m.TooBig, w.Op, w.Data)
			}
		}
		if _, err := s.Next(100000, 1<<20); !errors.Is(err, io.EOF) {
			t.Errorf("chunk %d: after the last frame err = %v, want EOF", chunk, err)
		}
		s.release()
	}
}

func TestSocketLimits(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 300)
	stream := append(clientFrame(false, OpText, big[:200]), clientFrame(true, OpContinuation, big[200:])...)
	stream = append(stream, clientFrame(true, OpText, []byte("ok"))...)
	s := socketOver(stream, 0)
	if m, err := s.Next(256, 1024); err != nil || !m.TooBig || len(m.Data) != 0 {
		t.Fatalf("over the limit: %v tooBig=%v len=%d, want discarded", err, m.TooBig, len(m.Data))
	}
	if m, err := s.Next(256, 1024); err != nil || string(m.Data) != "ok" {
		t.Fatalf("message after a discarded one = %q, %v", m.Data, err)
	}
	// A continuation declaring 2^63-1 bytes after a 1-byte first fragment: the sum must not overflow
	// past the hard limit (it would make a slice of that size and panic).
	huge := append([]byte{0x80 | OpContinuation, 0x80 | 127}, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4)
	for name, stream := range map[string][]byte{
		"one frame":        clientFrame(true, OpText, bytes.Repeat([]byte("z"), 2000)),
		"overflowing sum":  append(clientFrame(false, OpText, []byte("a")), huge...),
		"declared 2^63-1":  append([]byte{0x80 | OpText, 0x80 | 127}, huge[2:]...),
		"two large frames": append(clientFrame(false, OpText, big), clientFrame(true, OpContinuation, bytes.Repeat(big, 3))...),
	} {
		var pe *ProtocolError
		if _, err := socketOver(stream, 0).Next(256, 1024); !errors.As(err, &pe) || pe.Code != CloseTooBig {
			t.Errorf("%s: %v, want close 1009", name, err)
		}
	}
}

func TestClosePayloadStaysUTF8(t *testing.T) {
	for _, reason := range []string{strings.Repeat("é", 100), "bad \xff key", strings.Repeat("x", 200)} {
		p := ClosePayload(4001, reason)
		if len(p) > MaxControlPayload || !utf8.Valid(p[2:]) || binary.BigEndian.Uint16(p) != 4001 {
			t.Errorf("ClosePayload(%.20q) = %d bytes, valid UTF-8 %v", reason, len(p), utf8.Valid(p[2:]))
		}
	}
}

func TestSocketRejectsBrokenFraming(t *testing.T) {
	unmasked := clientFrame(true, OpText, []byte("hi"))
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, OpText, []byte("hi"))
	rsv[0] |= 0x40
	cases := map[string][]byte{
		"unmasked":            unmasked,
		"reserved bits":       rsv,
		"unknown opcode":      clientFrame(true, 0x3, nil),
		"fragmented control":  clientFrame(false, OpPing, nil),
		"long control":        clientFrame(true, OpPong, bytes.Repeat([]byte("p"), 126)),
		"stray continuation":  clientFrame(true, OpContinuation, []byte("x")),
		"message in fragment": append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpText, []byte("b"))...),
	}
	for name, stream := range cases {
		var pe *ProtocolError
		if _, err := socketOver(stream, 0).Next(1024, 4096); !errors.As(err, &pe) || pe.Code != CloseProtocolError {
			t.Errorf("%s: err = %v, want close 1002", name, err)
		}
	}
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		code    int
		ok      bool
	}{
		{nil, 0, true},
		{ClosePayload(1000, ""), 1000, true},
		{ClosePayload(4200, "bye"), 4200, true},
		{[]byte{3}, 0, false},
		{ClosePayload(1005, ""), 0, false},
		{ClosePayload(999, ""), 0, false},
		{ClosePayload(5000, ""), 0, false},
	} {
		code, err := ParseClose(tc.payload)
		if code != tc.code || (err == nil) != tc.ok {
			t.Errorf("ParseClose(%v) = %d, %v", tc.payload, code, err)
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := AppendFrame(nil, OpText, make([]byte, n))
		header := len(f) - n
		want := map[bool]int{true: 2}[n <= 125] + map[bool]int{true: 4}[n > 125 && n <= 65535] + map[bool]int{true: 10}[n > 65535]
		if header != want || f[0] != 0x81 {
			t.Errorf("frame of %d bytes: header %d bytes (first byte %#x), want %d", n, header, f[0], want)
		}
	}
}

// FuzzNext feeds arbitrary bytes to the frame reader: it must never panic, never return more
// than the limits allow, and stop at the first error.
func FuzzNext(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte(`{"event":"pusher:ping","data":{}}`)))
	f.Add(append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpContinuation, []byte("b"))...))
	f.Add(clientFrame(true, OpClose, ClosePayload(1000, "")))
	f.Add(clientFrame(true, OpPing, []byte("x")))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, stream []byte) {
		s := socketOver(stream, 3)
		for range 64 {
			m, err := s.Next(64, 256)
			if err != nil {
				return
			}
			switch {
			case m.Op >= OpClose && len(m.Data) > MaxControlPayload:
				t.Fatalf("control frame of %d bytes", len(m.Data))
			case m.Op < OpClose && len(m.Data) > 64:
				t.Fatalf("message of %d bytes past the limit", len(m.Data))
			case m.Op < OpClose && m.TooBig && len(m.Data) != 0:
				t.Fatal("a discarded message kept its data")
			case m.Op == OpText && !m.TooBig && !utf8.Valid(m.Data):
				t.Fatalf("a text message that is not UTF-8: %q", m.Data)
			}
		}
	})
}
