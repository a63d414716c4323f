// Package wstest encodes WebSocket frames the way a client must send them, for tests of Herald's
// server-side WebSocket code.
package wstest

import (
	"bytes"
	"encoding/binary"
)

// Frame encodes a client frame: masked, with the given fin bit and opcode.
func Frame(fin bool, op byte, payload []byte) []byte {
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
	for i := range masked {
		masked[i] ^= key[i&3]
	}
	return append(b, masked...)
}
