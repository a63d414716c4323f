package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and parentheses: fields are counted from the last ')'.
	line := "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 9 0 100 123456789 2000 18446744073709551615\n"
	u, s, err := parseStatTicks([]byte(line))
	if err != nil || u != 1234 || s != 567 {
		t.Fatalf("parseStatTicks = %d, %d, %v; want 1234, 567", u, s, err)
	}
	for _, bad := range []string{"", "4242 no parens S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 0 0 0 0 0 u s"} {
		if _, _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q) succeeded", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\therald\nVmPeak:\t  900000 kB\nVmRSS:\t   26500 kB\nThreads:\t5\n"
	n, err := parseVmRSS(strings.NewReader(status))
	if err != nil || n != 26500*1024 {
		t.Fatalf("parseVmRSS = %d, %v", n, err)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tkthread\n")); err == nil {
		t.Error("parseVmRSS without a VmRSS line succeeded")
	}
}

// TestSampleSelf reads this process's own /proc entries: CPU time must grow with work.
func TestSampleSelf(t *testing.T) {
	a, err := sampleServer(processes{os.Getpid()}, "")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		b, err := sampleServer(processes{os.Getpid()}, "")
		if err != nil {
			t.Fatal(err)
		}
		if b.cpu > a.cpu {
			if b.rss <= 0 {
				t.Errorf("rss %d", b.rss)
			}
			c := costBetween(a, b, 10)
			if c.CPUSeconds <= 0 || c.CPUMicros <= 0 {
				t.Errorf("cost %+v", c)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not move in 5 s of work (%d)", x)
		}
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	n, err := parseGoroutineTotal(strings.NewReader("goroutine profile: total 17\n1 @ 0x43\n"))
	if err != nil || n != 17 {
		t.Errorf("parse = %d, %v; want 17", n, err)
	}
	if _, err := parseGoroutineTotal(strings.NewReader("<html>404</html>")); err == nil {
		t.Error("a page that is not a goroutine profile was accepted")
	}
}
