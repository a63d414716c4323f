package redis

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/herald-rt/herald/channels"
)

// A message crosses Redis pub/sub as one text envelope: a header line, then the frame's exact bytes,
// which every node hands to its subscribers unchanged (encoded once, on the publishing node):
//
//	H1 <flags> <except> <roster> <cached> <count>[ <published>]\n<frame>
//
// flags is 1 for a terminate, except a socket id or "-", roster, cached and count the versions of
// channels.Message, and published its sampling time, present only when set. The transition scripts
// build the same header, without published (common.lua's announce).

const envelopeVersion = "H1 "

var errEnvelope = errors.New("redis: malformed message envelope")

// appendEnvelope appends m's envelope to b.
func appendEnvelope(b []byte, m *channels.Message) []byte {
	b = append(b, envelopeVersion...)
	if m.Terminate {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, ' ')
	if m.Except == "" {
		b = append(b, '-')
	} else {
		b = append(b, m.Except...)
	}
	for _, v := range [...]uint64{m.Roster, m.Cached, m.Count} {
		b = append(b, ' ')
		b = strconv.AppendUint(b, v, 10)
	}
	if m.Published > 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, m.Published, 10)
	}
	b = append(b, '\n')
	return append(b, m.Frame...)
}

// parseEnvelope fills m (but its app and channel, which the pub/sub channel names) from an envelope.
// The frame aliases msg.
func parseEnvelope(msg []byte, m *channels.Message) error {
	if !bytes.HasPrefix(msg, []byte(envelopeVersion)) {
		return errEnvelope
	}
	nl := bytes.IndexByte(msg, '\n')
	if nl < 0 {
		return errEnvelope
	}
	fields := bytes.Fields(msg[len(envelopeVersion):nl])
	if len(fields) != 5 && len(fields) != 6 {
		return errEnvelope
	}
	if len(fields) == 6 {
		n, err := strconv.ParseInt(string(fields[5]), 10, 64)
		if err != nil || n <= 0 {
			return errEnvelope
		}
		m.Published = n
	}
	switch string(fields[0]) {
	case "0":
	case "1":
		m.Terminate = true
	default:
		return errEnvelope
	}
	if except := string(fields[1]); except != "-" {
		m.Except = except
	}
	for i, v := range [...]*uint64{&m.Roster, &m.Cached, &m.Count} {
		n, err := strconv.ParseUint(string(fields[2+i]), 10, 64)
		if err != nil {
			return errEnvelope
		}
		*v = n
	}
	m.Frame = msg[nl+1:]
	return nil
}
