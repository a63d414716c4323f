package main

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Every event the bench sends carries its sequence number and send time at the front of its data, so
// receivers can time it and tell lost, duplicated and late events apart without a lookup:
//
//	{"seq":17,"t":123456789,"pad":"xxxx…"}
//
// t is nanoseconds on this process's monotonic clock (since epoch), so the sender and the receivers
// need no clock agreement: they are the same process.
var epoch = time.Now()

// sinceEpoch is now on the monotonic clock stamps use.
func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// stampData returns event data of exactly size bytes (or the stamp alone when size is smaller).
func stampData(seq int, t int64, size int) string {
	b := make([]byte, 0, max(size, 48))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	return string(b)
}

// parseStamp reads seq and t back from data made by stampData; ok is false for anything else.
func parseStamp(data string) (seq int, t int64, ok bool) {
	rest, found := strings.CutPrefix(data, `{"seq":`)
	if !found {
		return 0, 0, false
	}
	s, rest, found := strings.Cut(rest, `,"t":`)
	if !found {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err1 := strconv.Atoi(s)
	ts, err2 := strconv.ParseInt(rest[:end], 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return 0, 0, false
	}
	return n, ts, true
}

// seqSet records which sequence numbers arrived; it is written by one goroutine (a connection's
// reader) and read after that goroutine has ended.
type seqSet []uint64

func newSeqSet(n int) seqSet { return make(seqSet, (n+63)/64) }

// add marks seq and reports whether it was new; seq out of range reports false.
func (s seqSet) add(seq int) (fresh, inRange bool) {
	w, bit := seq/64, uint64(1)<<(seq%64)
	if seq < 0 || w >= len(s) {
		return false, false
	}
	if s[w]&bit != 0 {
		return false, true
	}
	s[w] |= bit
	return true, true
}

func (s seqSet) has(seq int) bool {
	w := seq / 64
	return seq >= 0 && w < len(s) && s[w]&(1<<(seq%64)) != 0
}

// tally counts stamped events as readers receive them: unique deliveries with their latency,
// duplicates, and anything else (unstamped or out of range). fanout and client-events embed it.
type tally struct {
	hist       latencyHist
	delivered  atomic.Int64
	duplicated atomic.Int64
	other      atomic.Int64
}

// record counts one stamped event that reader index received at now (sinceEpoch); seen is that
// reader's own set, written by it alone. It reports whether the event was a fresh delivery.
func (t *tally) record(seen seqSet, index int, data string, now int64) bool {
	seq, sent, ok := parseStamp(data)
	if !ok {
		t.other.Add(1)
		return false
	}
	fresh, inRange := seen.add(seq)
	switch {
	case !inRange:
		t.other.Add(1)
	case !fresh:
		t.duplicated.Add(1)
	default:
		t.delivered.Add(1)
		t.hist.record(index, time.Duration(now-sent))
		return true
	}
	return false
}
