// Package ws is the server side of RFC 6455 WebSocket, without extensions: the opening handshake,
// the frame reader and writer, non-blocking writes, and a poller that parks idle sockets.
//
// Herald frames WebSocket itself on the server, rather than holding a general-purpose WebSocket
// connection per client, so that an idle connection costs a small struct and nothing else: no
// goroutine waiting in a read, no read buffer (see Socket.ParkIfIdle). Control frames come back from
// Next like messages, so the caller decides what a ping, pong or close means.
//
// The package uses only the standard library and knows nothing of Pusher or of Herald's connections.
package ws

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Close codes of the protocol itself (RFC 6455 §7.4.1).
const (
	CloseNormal         = 1000
	CloseProtocolError  = 1002
	CloseInvalidPayload = 1007
	CloseTooBig         = 1009
)

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// Frame is one frame to send: a data message in one frame, or a control frame.
type Frame struct {
	Op   byte
	Data []byte
}

// Message is one data message (text or binary, reassembled from its fragments) or one control
// frame, as Next returns it. A data message's Data is valid until the next call to Next or
// ParkIfIdle; a control frame's is its own.
type Message struct {
	Op   byte
	Data []byte
	// TooBig marks a data message over the limit given to Next: it was read and discarded, so
	// Data is empty and the connection can go on.
	TooBig bool
}

// ProtocolError ends a connection whose client broke the rules: the caller answers with a close
// frame carrying Code and stops reading.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

// CloseReceived reports the client's close frame; Code is 0 when the frame had no status.
type CloseReceived struct{ Code int }

func (e CloseReceived) Error() string { return fmt.Sprintf("websocket: client closed (%d)", e.Code) }

// ClosePayload encodes a close frame's status and reason, the reason cut to fit 125 bytes between
// runes. Browsers fail a connection whose close reason is not UTF-8 and never report its code, so
// invalid bytes are dropped.
func ClosePayload(code int, reason string) []byte {
	reason = strings.ToValidUTF8(reason, "")
	for len(reason) > MaxControlPayload-2 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

// ParseClose reads a client's close payload: empty (no status), or a status an endpoint may send and
// a UTF-8 reason. A broken payload is a *ProtocolError to answer with.
func ParseClose(p []byte) (code int, err error) {
	switch {
	case len(p) == 0:
		return 0, nil
	case len(p) == 1:
		return 0, &ProtocolError{CloseProtocolError, "invalid close payload"}
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, &ProtocolError{CloseProtocolError, "invalid close code"}
	}
	if !utf8.Valid(p[2:]) {
		return 0, &ProtocolError{CloseInvalidPayload, "close reason is not UTF-8"}
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

// AppendFrame appends one unmasked server frame.
func AppendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
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

// FrameOverhead is what a frame costs a sender's queue beyond its payload (its queue slot, its
// header), so that even empty frames, pongs to empty pings, cannot queue without bound.
const FrameOverhead = 32

// Cost is what f counts against a send queue's byte bound.
func (f Frame) Cost() int { return len(f.Data) + FrameOverhead }

// mask applies the XOR mask to p, whose first byte is at position pos of the payload, eight bytes at a
// time where it can. It returns the position after p.
func mask(p []byte, key [4]byte, pos int) int {
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
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
	return pos + len(p)
}
