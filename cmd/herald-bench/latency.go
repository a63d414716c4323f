package main

import (
	"math"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

// A latency histogram: log-linear buckets (64 per power of two, so any value is reported within
// 1/64 ≈ 1.6 % of itself) with atomic counters, sharded so that the readers of many connections can
// record at once without sharing a cache line. It holds counts only: memory is fixed whatever the
// number of samples, which matters when 10,000 subscribers each time every event.
const (
	histSubBits   = 6
	histSub       = 1 << histSubBits // sub-buckets per power of two
	histMaxShift  = 40               // values up to 2^(40+7) ns (~39 h) are bucketed; larger ones clamp
	histBuckets   = histSub + (histMaxShift+1)*histSub
	latencyShards = 8
)

// latencyHist records durations from any goroutine.
type latencyHist struct {
	shards [latencyShards]histShard
}

type histShard struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
	_      [64]byte // keep the next shard's hot fields off this one's cache line
}

// bucketOf returns the bucket of v nanoseconds; values below 64 ns have a bucket each.
func bucketOf(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	if shift > histMaxShift {
		return histBuckets - 1
	}
	mantissa := int(uint64(v) >> shift) // in [64, 128)
	return histSub + shift*histSub + (mantissa - histSub)
}

// bucketUpper returns the largest value bucket b holds.
func bucketUpper(b int) int64 {
	if b < histSub {
		return int64(b)
	}
	shift := (b - histSub) / histSub
	mantissa := int64(b%histSub) + histSub
	return (mantissa+1)<<shift - 1
}

// record adds one duration; shard is any number (a connection's index), used to spread contention.
func (h *latencyHist) record(shard int, d time.Duration) {
	s := &h.shards[uint(shard)%latencyShards]
	v := int64(d)
	s.counts[bucketOf(v)].Add(1)
	s.sum.Add(v)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// snapshot merges the shards; it may run while others record.
func (h *latencyHist) snapshot() histSnapshot {
	var out histSnapshot
	for i := range h.shards {
		s := &h.shards[i]
		for b := range s.counts {
			if n := s.counts[b].Load(); n > 0 {
				out.counts[b] += n
				out.n += n
			}
		}
		out.max = max(out.max, s.max.Load())
		out.sum += s.sum.Load()
	}
	return out
}

type histSnapshot struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
	sum    int64
}

// quantile returns the value below which a fraction q of the samples fall (the upper bound of the
// bucket holding the q-th sample, never above the largest sample); 0 when there are none.
func (s *histSnapshot) quantile(q float64) time.Duration {
	if s.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.n)))
	rank = min(max(rank, 1), s.n)
	var seen uint64
	for b, c := range s.counts {
		if seen += c; seen >= rank {
			return time.Duration(min(bucketUpper(b), s.max))
		}
	}
	return time.Duration(s.max)
}

// latencyMS is the latency summary every JSON line carries, in milliseconds.
type latencyMS struct {
	N    uint64  `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func (s *histSnapshot) summary() latencyMS {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	out := latencyMS{N: s.n, P50: ms(s.quantile(0.50)), P90: ms(s.quantile(0.90)),
		P99: ms(s.quantile(0.99)), Max: ms(time.Duration(s.max))}
	if s.n > 0 {
		out.Mean = ms(time.Duration(s.sum / int64(s.n)))
	}
	return out
}

func (l latencyMS) String() string {
	return fmtMS(l.P50) + " / " + fmtMS(l.P90) + " / " + fmtMS(l.P99) + " / " + fmtMS(l.Max) + " ms (p50/p90/p99/max)"
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return formatFloat(v, 0)
	case v >= 10:
		return formatFloat(v, 1)
	default:
		return formatFloat(v, 3)
	}
}

func formatFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
