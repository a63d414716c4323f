package channels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// The server side of RFC 6455 framing, without extensions. Herald frames its own sockets (rather than
// holding a general-purpose WebSocket connection per client) so that an idle connection can be parked:
// no goroutine, no read buffer, nothing but a small struct (see poller_linux.go). Control frames come
// back from next like messages, so the connection decides what a ping, pong or close means.

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	// opRaw marks an outFrame holding bytes already framed: the unwritten rest of a direct write.
	opRaw = 0xFF
)

// Close codes Herald sends besides Pusher's own 4000–4299 (RFC 6455 §7.4.1).
const (
	closeNormal        = 1000
	closeProtocolError = 1002
	closeTooBig        = 1009
)

const (
	maxControlPayload = 125
	readBufferSize    = 4096 // pooled; held only while a connection has bytes to read
)

// message is one data message (text or binary, reassembled from its fragments) or one control frame.
// A data message's data is valid until the next call to next or release; a control frame's is its own.
type message struct {
	op     byte
	data   []byte
	tooBig bool // a data message over the limit, already discarded
}

// outFrame is one frame for the writer: a data message, or a control frame queued behind the data.
type outFrame struct {
	op   byte
	data []byte
}

// frameOverhead is what a queued frame costs beyond its payload (its slot in the queue, its header):
// charged against MaxQueueBytes, so that even empty frames (pongs to empty pings) cannot queue
// without bound.
const frameOverhead = 32

func (f outFrame) cost() int { return len(f.data) + frameOverhead }

// protocolError ends a connection whose client broke the framing rules: Herald answers with a close
// frame carrying code and stops reading.
type protocolError struct {
	code   int
	reason string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.reason, e.code)
}

// closeReceived reports the client's close frame; code is 0 when the frame had no status.
type closeReceived struct{ code int }

func (e closeReceived) Error() string { return fmt.Sprintf("websocket: client closed (%d)", e.code) }

var (
	readBuffers    = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}
	messageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	writeBuffers   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

// wsSocket is one client's WebSocket after the handshake. One goroutine at a time reads (the
// connection's reader); writes are serialised by wmu and each is a single socket write with a deadline.
type wsSocket struct {
	nc           net.Conn
	raw          syscall.RawConn // for writes that must not wait; nil without a descriptor
	fd           int             // for the poller; -1 when the connection has no file descriptor to watch
	writeTimeout time.Duration

	// Read state, owned by the reader.
	rbuf *[]byte  // pooled; nil while nothing is buffered
	r, w int      // unread bytes are (*rbuf)[r:w]
	msg  *[]byte  // the message being assembled; pooled
	frag fragment // the data message in progress, across control frames

	wmu    sync.Mutex
	closed atomic.Bool
}

func newSocket(nc net.Conn, pending []byte, writeTimeout time.Duration) *wsSocket {
	s := &wsSocket{nc: nc, fd: -1, writeTimeout: writeTimeout}
	s.raw, s.fd = rawConn(nc)
	if len(pending) > 0 {
		s.takeBuffer()
		s.w = copy(*s.rbuf, pending)
	}
	return s
}

// rawConn returns the raw connection and descriptor of a TCP or Unix socket, or nil and -1 for
// anything else (TLS, pipes).
func rawConn(nc net.Conn) (syscall.RawConn, int) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return nil, -1
	}
	return rc, fd
}

func (s *wsSocket) pollFD() int { return s.fd }

// watch runs fn with the socket's descriptor, which stays open (and so cannot be reused by another
// connection) until fn returns. It reports false when there is no descriptor or it is closed.
func (s *wsSocket) watch(fn func(fd int)) bool {
	return s.raw != nil && s.raw.Control(func(fd uintptr) { fn(int(fd)) }) == nil
}

// pending reports whether bytes are buffered, so that next may not need the network.
func (s *wsSocket) pending() bool { return s.w > s.r }

// release returns the buffers to their pools when nothing is buffered: what an idle connection keeps
// is its struct, not 5 KiB of buffers. Only the reader calls it, between messages.
func (s *wsSocket) release() {
	if s.rbuf != nil && s.r == s.w {
		readBuffers.Put(s.rbuf)
		s.rbuf, s.r, s.w = nil, 0, 0
	}
	if s.msg != nil && s.frag.op == 0 { // keep a fragmented message's first part
		putBuffer(&messageBuffers, s.msg)
		s.msg = nil
	}
}

func (s *wsSocket) takeBuffer() {
	s.rbuf = readBuffers.Get().(*[]byte)
	s.r, s.w = 0, 0
}

// fill makes at least n (≤ readBufferSize) bytes available in the read buffer.
func (s *wsSocket) fill(n int) error {
	if s.rbuf == nil {
		s.takeBuffer()
	}
	buf := *s.rbuf
	if s.r+n > len(buf) {
		s.w = copy(buf, buf[s.r:s.w])
		s.r = 0
	}
	for s.w-s.r < n {
		m, err := s.nc.Read(buf[s.w:])
		s.w += m
		if err != nil {
			if s.w-s.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && s.w > s.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readFull fills p from the buffer first, then straight from the socket.
func (s *wsSocket) readFull(p []byte) error {
	if len(p) <= readBufferSize {
		if err := s.fill(len(p)); err != nil {
			return err
		}
		s.r += copy(p, (*s.rbuf)[s.r:s.w])
		return nil
	}
	n := 0
	if s.rbuf != nil {
		n = copy(p, (*s.rbuf)[s.r:s.w])
		s.r += n
	}
	_, err := io.ReadFull(s.nc, p[n:])
	return err
}

// discard skips n payload bytes.
func (s *wsSocket) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, readBufferSize))
		if err := s.fill(chunk); err != nil {
			return err
		}
		s.r += chunk
		n -= int64(chunk)
	}
	return nil
}

// fragment tracks a data message across its frames; op is 0 between messages.
type fragment struct {
	op     byte
	total  int64
	tooBig bool
}

// frameHeader is the decoded start of a client frame.
type frameHeader struct {
	fin    bool
	op     byte
	length int64
	mask   [4]byte
}

// readHeader reads and checks one client frame header: no reserved bits (no extension was agreed),
// masked (clients must mask), a known opcode, and control frames unfragmented and small.
func (s *wsSocket) readHeader() (frameHeader, error) {
	if err := s.fill(2); err != nil {
		return frameHeader{}, err
	}
	b0, b1 := (*s.rbuf)[s.r], (*s.rbuf)[s.r+1]
	s.r += 2
	h := frameHeader{fin: b0&0x80 != 0, op: b0 & 0x0F, length: int64(b1 & 0x7F)}
	switch {
	case b0&0x70 != 0:
		return h, &protocolError{closeProtocolError, "reserved bits set"}
	case b1&0x80 == 0:
		return h, &protocolError{closeProtocolError, "client frames must be masked"}
	case h.op > opBinary && h.op < opClose || h.op > opPong:
		return h, &protocolError{closeProtocolError, "unknown opcode"}
	}
	extra := 4
	switch h.length {
	case 126:
		extra += 2
	case 127:
		extra += 8
	}
	if err := s.fill(extra); err != nil {
		return h, err
	}
	b := (*s.rbuf)[s.r : s.r+extra]
	s.r += extra
	switch h.length {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b))
	case 127:
		h.length = int64(binary.BigEndian.Uint64(b))
		if h.length < 0 {
			return h, &protocolError{closeProtocolError, "invalid payload length"}
		}
	}
	copy(h.mask[:], b[extra-4:])
	if h.op >= opClose && (!h.fin || h.length > maxControlPayload) {
		return h, &protocolError{closeProtocolError, "invalid control frame"}
	}
	return h, nil
}

// next returns the next control frame or whole data message. A data message longer than limit is
// discarded and returned with tooBig, so an oversized frame costs its sender an error, not the
// connection; one longer than hardLimit ends the connection (1009) without reading it.
func (s *wsSocket) next(limit, hardLimit int) (message, error) {
	for {
		h, err := s.readHeader()
		if err != nil {
			return message{}, err
		}
		if h.op >= opClose {
			p := make([]byte, h.length) // control frames are rare: no buffer kept for them
			if err := s.readFull(p); err != nil {
				return message{}, err
			}
			maskBytes(p, h.mask)
			return message{op: h.op, data: p}, nil
		}
		switch {
		case h.op == opContinuation && s.frag.op == 0:
			return message{}, &protocolError{closeProtocolError, "continuation without a message"}
		case h.op != opContinuation && s.frag.op != 0:
			return message{}, &protocolError{closeProtocolError, "new message inside a fragmented one"}
		case h.op != opContinuation:
			s.frag = fragment{op: h.op}
			if s.msg == nil {
				s.msg = messageBuffers.Get().(*[]byte)
			}
			*s.msg = (*s.msg)[:0]
		}
		if h.length > int64(hardLimit)-s.frag.total { // compared before adding: lengths reach 2^63-1
			return message{}, &protocolError{closeTooBig, "message too big"}
		}
		s.frag.total += h.length
		if s.frag.total > int64(limit) {
			s.frag.tooBig = true
			*s.msg = (*s.msg)[:0]
			if err := s.discard(h.length); err != nil {
				return message{}, err
			}
		} else {
			start := len(*s.msg)
			*s.msg = grow(*s.msg, int(h.length))
			p := (*s.msg)[start:]
			if err := s.readFull(p); err != nil {
				return message{}, err
			}
			maskBytes(p, h.mask)
		}
		if h.fin {
			m := message{op: s.frag.op, data: *s.msg, tooBig: s.frag.tooBig}
			s.frag = fragment{}
			return m, nil
		}
	}
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// maskBytes applies the XOR mask to a whole payload p, eight bytes at a time
// where it can.
func maskBytes(p []byte, key [4]byte) {
	var k [4]byte
	for i := range k {
		k[i] = key[i]
	}
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32)<<32 | uint64(k32)
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= k[i&3]
	}
}

// appendFrame appends one unmasked server frame.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case op == opRaw:
		return append(dst, payload...)
	case n <= 125:
		dst = append(dst, 0x80|op, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closePayload encodes a close frame's status and reason (cut to fit 125 bytes, between runes).
func closePayload(code int, reason string) []byte {
	// Browsers fail a connection whose close reason is not UTF-8, and never report its code.
	reason = strings.ToValidUTF8(reason, "")
	for len(reason) > maxControlPayload-2 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

// parseClose reads a client's close payload: empty (no status) or a status and a UTF-8 reason.
func parseClose(p []byte) (int, error) {
	switch {
	case len(p) == 0:
		return 0, nil
	case len(p) == 1:
		return 0, &protocolError{closeProtocolError, "invalid close payload"}
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, &protocolError{closeProtocolError, "invalid close code"}
	}
	return code, nil
}

// validCloseCode accepts the codes an endpoint may send (RFC 6455 §7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code < 1000 || code > 1014:
		return false
	}
	return code != 1004 && code != 1005 && code != 1006
}

// write sends frames in order in one socket write, bounded by the write timeout.
func (s *wsSocket) write(frames []outFrame) error {
	buf := encodeFrames(frames...)
	defer putBuffer(&writeBuffers, buf)
	b := *buf
	s.wmu.Lock()
	err := s.nc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if err == nil {
		_, err = s.nc.Write(b)
	}
	if err == nil { // a deadline left behind would fail the next tryWrite once it passed
		err = s.nc.SetWriteDeadline(time.Time{})
	}
	s.wmu.Unlock()
	return err
}

// encodeFrames frames frames into a pooled buffer, which the caller gives back with putBuffer.
func encodeFrames(frames ...outFrame) *[]byte {
	buf := writeBuffers.Get().(*[]byte)
	for _, f := range frames {
		*buf = appendFrame(*buf, f.op, f.data)
	}
	return buf
}

// putBuffer empties buf and returns it to pool, unless one large message grew it past 64 KiB.
func putBuffer(pool *sync.Pool, buf *[]byte) {
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		pool.Put(buf)
	}
}

// tryWrite writes a frame as far as the socket takes it without waiting, and returns the framed bytes
// it did not take (nil when all went). Only the writer of the moment may call it: it does not wait, so
// it needs no deadline, and it saves a goroutine per write to a client that keeps up. Waiting writes
// clear their deadline afterwards, since the runtime refuses any write once a deadline has passed.
func (s *wsSocket) tryWrite(f outFrame) (rest []byte, err error) {
	buf := encodeFrames(f)
	defer putBuffer(&writeBuffers, buf)
	b := *buf
	n := 0
	if s.raw != nil {
		s.wmu.Lock()
		rerr := s.raw.Write(func(fd uintptr) bool {
			n, err = writeNow(fd, b)
			return true // never wait: what is left goes to the writer goroutine
		})
		s.wmu.Unlock()
		if err == nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			err = rerr // a passed deadline only means: let the writer goroutine wait
		}
	}
	if n < len(b) && err == nil {
		rest = bytes.Clone(b[n:])
	}
	return rest, err
}

// lingerClose ends a connection whose reader has stopped: it sends FIN after what was written and
// discards what the client still sends until it closes too or grace passes. Closing at once with
// unread input would reset the connection, and the client could lose the close frame just written.
func (s *wsSocket) lingerClose(grace time.Duration) {
	if cw, ok := s.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil &&
		s.nc.SetReadDeadline(time.Now().Add(grace)) == nil {
		buf := readBuffers.Get().(*[]byte)
		for {
			if _, err := s.nc.Read(*buf); err != nil {
				break
			}
		}
		readBuffers.Put(buf)
	}
	_ = s.close()
}

// close closes the socket at once; it is idempotent.
func (s *wsSocket) close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.nc.Close()
}

func (s *wsSocket) isClosed() bool { return s.closed.Load() }
