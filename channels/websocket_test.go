package channels

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
)

// clientFrame encodes a frame the way a client must: masked, with the given fin bit and opcode.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch n := len(payload); {
	case n <= 125:
		b = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		b = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	masked := bytes.Clone(payload)
	maskBytes(masked, key)
	return append(b, masked...)
}

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

func socketOver(stream []byte, chunk int) *wsSocket {
	return newSocket(&streamConn{r: bytes.NewReader(stream), chunk: chunk}, nil, time.Second)
}

func TestSocketReadsMessagesAndControlFrames(t *testing.T) {
	long := strings.Repeat("x", 70000) // a 64-bit length
	var stream []byte
	stream = append(stream, clientFrame(true, opText, []byte(`{"event":"a"}`))...)
	stream = append(stream, clientFrame(false, opText, []byte(`{"event":`))...)
	stream = append(stream, clientFrame(true, opPing, []byte("p"))...) // between fragments
	stream = append(stream, clientFrame(false, opContinuation, []byte(`"b"`))...)
	stream = append(stream, clientFrame(true, opContinuation, []byte(`}`))...)
	stream = append(stream, clientFrame(true, opText, []byte(long))...)
	stream = append(stream, clientFrame(true, opBinary, []byte{0, 1, 2})...)
	stream = append(stream, clientFrame(true, opClose, closePayload(1000, "bye"))...)
	want := []message{
		{op: opText, data: []byte(`{"event":"a"}`)},
		{op: opPing, data: []byte("p")},
		{op: opText, data: []byte(`{"event":"b"}`)},
		{op: opText, data: []byte(long)},
		{op: opBinary, data: []byte{0, 1, 2}},
		{op: opClose, data: closePayload(1000, "bye")},
	}
	for _, chunk := range []int{0, 1, 7} {
		s := socketOver(stream, chunk)
		for i, w := range want {
			m, err := s.next(100000, 1<<20)
			if err != nil {
				t.Fatalf("chunk %d, message %d: %v", chunk, i, err)
			}
			if m.op != w.op || !bytes.Equal(m.data, w.data) || m.tooBig {
				t.Fatalf("chunk %d, message %d = op %d %.40q tooBig=%v, want op %d %.40q", chunk, i, m.op, m.data, m.tooBig, w.op, w.data)
			}
		}
		if _, err := s.next(100000, 1<<20); !errors.Is(err, io.EOF) {
			t.Errorf("chunk %d: after the last frame err = %v, want EOF", chunk, err)
		}
		s.release()
	}
}

func TestSocketLimits(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 300)
	stream := append(clientFrame(false, opText, big[:200]), clientFrame(true, opContinuation, big[200:])...)
	stream = append(stream, clientFrame(true, opText, []byte("ok"))...)
	s := socketOver(stream, 0)
	if m, err := s.next(256, 1024); err != nil || !m.tooBig || len(m.data) != 0 {
		t.Fatalf("over the limit: %v tooBig=%v len=%d, want discarded", err, m.tooBig, len(m.data))
	}
	if m, err := s.next(256, 1024); err != nil || string(m.data) != "ok" {
		t.Fatalf("message after a discarded one = %q, %v", m.data, err)
	}
	// A continuation declaring 2^63-1 bytes after a 1-byte first fragment: the sum must not overflow
	// past the hard limit (it would make a slice of that size and panic).
	huge := append([]byte{0x80 | opContinuation, 0x80 | 127}, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4)
	for name, stream := range map[string][]byte{
		"one frame":        clientFrame(true, opText, bytes.Repeat([]byte("z"), 2000)),
		"overflowing sum":  append(clientFrame(false, opText, []byte("a")), huge...),
		"declared 2^63-1":  append([]byte{0x80 | opText, 0x80 | 127}, huge[2:]...),
		"two large frames": append(clientFrame(false, opText, big), clientFrame(true, opContinuation, bytes.Repeat(big, 3))...),
	} {
		var pe *protocolError
		if _, err := socketOver(stream, 0).next(256, 1024); !errors.As(err, &pe) || pe.code != closeTooBig {
			t.Errorf("%s: %v, want close 1009", name, err)
		}
	}
}

func TestClosePayloadStaysUTF8(t *testing.T) {
	for _, reason := range []string{strings.Repeat("é", 100), "bad \xff key", strings.Repeat("x", 200)} {
		p := closePayload(4001, reason)
		if len(p) > maxControlPayload || !utf8.Valid(p[2:]) || binary.BigEndian.Uint16(p) != 4001 {
			t.Errorf("closePayload(%.20q) = %d bytes, valid UTF-8 %v", reason, len(p), utf8.Valid(p[2:]))
		}
	}
}

func TestSocketRejectsBrokenFraming(t *testing.T) {
	unmasked := clientFrame(true, opText, []byte("hi"))
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, opText, []byte("hi"))
	rsv[0] |= 0x40
	cases := map[string][]byte{
		"unmasked":            unmasked,
		"reserved bits":       rsv,
		"unknown opcode":      clientFrame(true, 0x3, nil),
		"fragmented control":  clientFrame(false, opPing, nil),
		"long control":        clientFrame(true, opPong, bytes.Repeat([]byte("p"), 126)),
		"stray continuation":  clientFrame(true, opContinuation, []byte("x")),
		"message in fragment": append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...),
	}
	for name, stream := range cases {
		var pe *protocolError
		if _, err := socketOver(stream, 0).next(1024, 4096); !errors.As(err, &pe) || pe.code != closeProtocolError {
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
		{closePayload(1000, ""), 1000, true},
		{closePayload(4200, "bye"), 4200, true},
		{[]byte{3}, 0, false},
		{closePayload(1005, ""), 0, false},
		{closePayload(999, ""), 0, false},
		{closePayload(5000, ""), 0, false},
	} {
		code, err := parseClose(tc.payload)
		if code != tc.code || (err == nil) != tc.ok {
			t.Errorf("parseClose(%v) = %d, %v", tc.payload, code, err)
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := appendFrame(nil, opText, make([]byte, n))
		header := len(f) - n
		want := map[bool]int{true: 2}[n <= 125] + map[bool]int{true: 4}[n > 125 && n <= 65535] + map[bool]int{true: 10}[n > 65535]
		if header != want || f[0] != 0x81 {
			t.Errorf("frame of %d bytes: header %d bytes (first byte %#x), want %d", n, header, f[0], want)
		}
	}
}

// FuzzSocketNext feeds arbitrary bytes to the frame reader: it must never panic, never return more
// than the limits allow, and stop at the first error.
func FuzzSocketNext(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"event":"pusher:ping","data":{}}`)))
	f.Add(append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add(clientFrame(true, opClose, closePayload(1000, "")))
	f.Add(clientFrame(true, opPing, []byte("x")))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, stream []byte) {
		s := socketOver(stream, 3)
		for range 64 {
			m, err := s.next(64, 256)
			if err != nil {
				return
			}
			switch {
			case m.op >= opClose && len(m.data) > maxControlPayload:
				t.Fatalf("control frame of %d bytes", len(m.data))
			case m.op < opClose && len(m.data) > 64:
				t.Fatalf("message of %d bytes past the limit", len(m.data))
			case m.op < opClose && m.tooBig && len(m.data) != 0:
				t.Fatal("a discarded message kept its data")
			}
		}
	})
}
