package main

import (
	"context"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 64, 200, 1000} {
		d := stampData(1234, 987654321, size)
		if size >= 48 && len(d) != size {
			t.Errorf("size %d: got %d bytes", size, len(d))
		}
		seq, ts, ok := parseStamp(d)
		if !ok || seq != 1234 || ts != 987654321 {
			t.Errorf("size %d: parseStamp(%q) = %d, %d, %v", size, d, seq, ts, ok)
		}
	}
	for _, bad := range []string{"", "{}", `{"seq":x,"t":1}`, `{"seq":1}`, `{"seq":-1,"t":5}`, `{"t":1,"seq":2}`} {
		if _, _, ok := parseStamp(bad); ok {
			t.Errorf("parseStamp(%q) succeeded", bad)
		}
	}
}

func TestSeqSet(t *testing.T) {
	s := newSeqSet(100)
	if fresh, in := s.add(99); !fresh || !in {
		t.Error("first add of 99")
	}
	if fresh, in := s.add(99); fresh || !in {
		t.Error("second add of 99 is not a duplicate")
	}
	if _, in := s.add(128); in {
		t.Error("128 is in range of a set of 100")
	}
	if !s.has(99) || s.has(98) || s.has(-1) {
		t.Error("has")
	}
}

func TestPacerKeepsItsRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := newPacer(2000)
	start := time.Now()
	var n int64
	for time.Since(start) < 200*time.Millisecond {
		n += p.wait(ctx)
	}
	elapsed := time.Since(start).Seconds()
	if want := 2000 * elapsed; float64(n) > want+float64(p.maxBurst)+1 || float64(n+p.lagged) < want*0.8 {
		t.Errorf("%d items (+%d lagged) in %.3fs at 2000/s", n, p.lagged, elapsed)
	}
}

func TestPacerForgivesALateCaller(t *testing.T) {
	p := newPacer(1000)
	p.start = time.Now().Add(-time.Second) // a second late: 1000 owed
	if n := p.due(time.Now()); n != p.maxBurst {
		t.Errorf("due = %d, want the burst cap %d", n, p.maxBurst)
	}
	if p.lagged < 900 {
		t.Errorf("lagged = %d", p.lagged)
	}
}

func TestRequireLoopback(t *testing.T) {
	for _, ok := range []string{"ws://127.0.0.1:6001", "ws://localhost:6001", "ws://[::1]:6001", "ws://127.0.0.9:1/prefix"} {
		if err := requireLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"ws://10.0.0.1:6001", "ws://example.com", "ws://1270.0.0.1", "ws://127example.com"} {
		if err := requireLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestSources(t *testing.T) {
	if s, _ := newSources(1); s != nil {
		t.Errorf("one source: %v, want the kernel's choice", s)
	}
	s, err := newSources(3)
	if err != nil || len(s) != 3 || s[2].String() != "127.0.0.3" {
		t.Fatalf("newSources(3) = %v, %v", s, err)
	}
	if o := s.options(4, 4, nil); o.LocalAddr.String() != "127.0.0.2" || o.EventBuffer != 4 {
		t.Errorf("options(4) = %+v", o)
	}
	if _, err := newSources(255); err == nil {
		t.Error("255 sources accepted")
	}
	if autoSources(19000) != 1 || autoSources(100000) != 5 {
		t.Error("autoSources")
	}
}
