package main

import (
	"math"
	"testing"
	"time"
)

func TestBucketBoundsCoverEveryValue(t *testing.T) {
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 999_999, 1 << 30, 1<<40 + 12345} {
		b := bucketOf(v)
		if up := bucketUpper(b); up < v {
			t.Errorf("value %d: bucket %d ends at %d", v, b, up)
		}
		if b > 0 {
			if prev := bucketUpper(b - 1); prev >= v {
				t.Errorf("value %d: previous bucket %d already ends at %d", v, b-1, prev)
			}
		}
		if v >= 64 {
			if up := bucketUpper(b); float64(up-v) > float64(v)/64 {
				t.Errorf("value %d: bucket upper %d is more than 1/64 above", v, up)
			}
		}
	}
	if b := bucketOf(math.MaxInt64); b != histBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last, %d", b, histBuckets-1)
	}
	if b := bucketOf(-5); b != 0 {
		t.Errorf("negative value in bucket %d", b)
	}
}

func TestQuantilesOfUniformSamples(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 100_000; i++ { // 1 µs … 100 ms
		h.record(i, time.Duration(i)*time.Microsecond)
	}
	s := h.snapshot()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := s.quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.02 {
			t.Errorf("q%.2f = %v, want %v within 2%%", c.q, got, c.want)
		}
	}
	sum := s.summary()
	if sum.N != 100_000 || sum.Max != 100 || math.Abs(sum.Mean-50) > 0.01 {
		t.Errorf("summary %+v", sum)
	}
}

func TestQuantileNeverPassesTheMaximum(t *testing.T) {
	var h latencyHist
	h.record(0, 1000*time.Nanosecond) // bucket [1000, 1007]
	s := h.snapshot()
	if got := s.quantile(0.99); got != 1000 {
		t.Errorf("p99 of one sample = %v, want 1µs", got)
	}
	var empty latencyHist
	es := empty.snapshot()
	if got := es.summary(); got != (latencyMS{}) {
		t.Errorf("empty summary %+v", got)
	}
}
