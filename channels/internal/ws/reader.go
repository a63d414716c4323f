package ws

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"unicode/utf8"
)

// fragment tracks a data message across its frames; op is 0 between messages.
type fragment struct {
	total  int64
	op     byte
	tooBig bool
}

// frameHeader is the decoded start of a client frame.
type frameHeader struct {
	fin    bool
	op     byte
	length int64
	mask   [4]byte
}

// Next returns the next control frame or whole data message, waiting for the network if need be.
// A data message longer than limit is discarded and returned with TooBig, so an oversized frame costs
// its sender an error, not the connection; one longer than hardLimit ends the connection (1009)
// without being read. A text message that is not UTF-8 ends it too (1007). Memory grows with the bytes
// that arrive, never with the length a header declares.
func (s *Socket) Next(limit, hardLimit int) (Message, error) {
	for {
		h, err := s.readHeader()
		if err != nil {
			return Message{}, err
		}
		if h.op >= OpClose {
			p := make([]byte, h.length) // at most 125 bytes; control frames are rare: no buffer kept
			if err := s.readPayload(p, h.mask); err != nil {
				return Message{}, err
			}
			return Message{Op: h.op, Data: p}, nil
		}
		switch {
		case h.op == OpContinuation && s.frag.op == 0:
			return Message{}, &ProtocolError{CloseProtocolError, "continuation without a message"}
		case h.op != OpContinuation && s.frag.op != 0:
			return Message{}, &ProtocolError{CloseProtocolError, "new message inside a fragmented one"}
		case h.op != OpContinuation:
			s.frag = fragment{op: h.op}
			if s.msg == nil {
				s.msg = messageBuffers.Get().(*[]byte)
			}
			*s.msg = (*s.msg)[:0]
		}
		if h.length > int64(hardLimit)-s.frag.total { // compared before adding: lengths reach 2^63-1
			return Message{}, &ProtocolError{CloseTooBig, "message too big"}
		}
		s.frag.total += h.length
		if s.frag.total > int64(limit) {
			s.frag.tooBig = true
			*s.msg = (*s.msg)[:0]
			if err := s.discard(h.length); err != nil {
				return Message{}, err
			}
		} else if err := s.appendPayload(int(h.length), h.mask); err != nil {
			return Message{}, err
		}
		if !h.fin {
			continue
		}
		m := Message{Op: s.frag.op, Data: *s.msg, TooBig: s.frag.tooBig}
		s.frag = fragment{}
		if m.Op == OpText && !m.TooBig && !utf8.Valid(m.Data) {
			return Message{}, &ProtocolError{CloseInvalidPayload, "text message is not UTF-8"}
		}
		return m, nil
	}
}

// readHeader reads and checks one client frame header: no reserved bits (no extension was agreed),
// masked (clients must mask), a known opcode, and control frames unfragmented and small.
func (s *Socket) readHeader() (frameHeader, error) {
	if err := s.fill(2); err != nil {
		return frameHeader{}, err
	}
	b0, b1 := (*s.rbuf)[s.r], (*s.rbuf)[s.r+1]
	s.r += 2
	h := frameHeader{fin: b0&0x80 != 0, op: b0 & 0x0F, length: int64(b1 & 0x7F)}
	switch {
	case b0&0x70 != 0:
		return h, &ProtocolError{CloseProtocolError, "reserved bits set"}
	case b1&0x80 == 0:
		return h, &ProtocolError{CloseProtocolError, "client frames must be masked"}
	case h.op > OpBinary && h.op < OpClose || h.op > OpPong:
		return h, &ProtocolError{CloseProtocolError, "unknown opcode"}
	}
	extra := 4
	switch h.length {
	case 126:
		extra += 2
	case 127:
		extra += 8
	}
	if err := s.fill(extra); err != nil {
		return h, eof(err)
	}
	b := (*s.rbuf)[s.r : s.r+int32(extra)]
	s.r += int32(extra)
	switch h.length {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b))
	case 127:
		h.length = int64(binary.BigEndian.Uint64(b))
		if h.length < 0 {
			return h, &ProtocolError{CloseProtocolError, "invalid payload length"}
		}
	}
	copy(h.mask[:], b[extra-4:])
	if h.op >= OpClose && (!h.fin || h.length > MaxControlPayload) {
		return h, &ProtocolError{CloseProtocolError, "invalid control frame"}
	}
	return h, nil
}

// appendPayload reads n payload bytes onto the message being assembled. The message grows by at most
// what has arrived (at least a read buffer's worth, at most doubling), so a header declaring a large
// frame costs its sender nothing until the bytes come.
func (s *Socket) appendPayload(n int, key [4]byte) error {
	pos := 0
	for n > 0 {
		msg := *s.msg
		if cap(msg) == len(msg) {
			msg = slices.Grow(msg, min(n, max(readBufferSize, len(msg))))
		}
		p := msg[len(msg):min(cap(msg), len(msg)+n)]
		got, err := s.read(p)
		pos = mask(p[:got], key, pos)
		*s.msg = msg[:len(msg)+got]
		n -= got
		if err != nil {
			return err
		}
	}
	return nil
}

// readPayload reads exactly len(p) payload bytes into p and unmasks them.
func (s *Socket) readPayload(p []byte, key [4]byte) error {
	for pos := 0; pos < len(p); {
		got, err := s.read(p[pos:])
		mask(p[pos:pos+got], key, pos)
		pos += got
		if err != nil {
			return err
		}
	}
	return nil
}

// read reads at least one and at most len(p) bytes: from the buffer when it holds any, else straight
// from the network for large reads, else through the buffer.
func (s *Socket) read(p []byte) (int, error) {
	if s.rbuf != nil && s.w > s.r {
		n := copy(p, (*s.rbuf)[s.r:s.w])
		s.r += int32(n)
		return n, nil
	}
	if len(p) >= readBufferSize {
		n, err := s.nc.Read(p)
		if n > 0 {
			return n, nil
		}
		return 0, eof(err)
	}
	if err := s.fill(1); err != nil {
		return 0, eof(err)
	}
	n := copy(p, (*s.rbuf)[s.r:s.w])
	s.r += int32(n)
	return n, nil
}

// eof makes a stream that ends inside a frame an unexpected EOF.
func eof(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fill makes at least n (≤ readBufferSize) bytes available in the read buffer.
func (s *Socket) fill(n int) error {
	if s.rbuf == nil {
		s.takeBuffer()
	}
	buf := *s.rbuf
	if int(s.r)+n > len(buf) {
		s.w = int32(copy(buf, buf[s.r:s.w]))
		s.r = 0
	}
	for int(s.w-s.r) < n {
		m, err := s.nc.Read(buf[s.w:])
		s.w += int32(m)
		if err != nil {
			if int(s.w-s.r) >= n {
				return nil
			}
			if s.w > s.r {
				return eof(err)
			}
			return err
		}
	}
	return nil
}

func (s *Socket) takeBuffer() {
	s.rbuf = readBuffers.Get().(*[]byte)
	s.r, s.w = 0, 0
}

// discard skips n payload bytes.
func (s *Socket) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, readBufferSize))
		if err := s.fill(chunk); err != nil {
			return err
		}
		s.r += int32(chunk)
		n -= int64(chunk)
	}
	return nil
}
