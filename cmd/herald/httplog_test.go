package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestHTTPErrorsAreJSONRateLimitedAndCounted: net/http's reports become JSON lines, at most one per
// interval with the number left out since the last, and every report is counted.
func TestHTTPErrorsAreJSONRateLimitedAndCounted(t *testing.T) {
	var out bytes.Buffer
	log := zerolog.New(&out)
	h := newHTTPErrors(&log)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return clock }
	el := h.logger()

	accept := "http: Accept error: accept tcp [::]:6001: accept4: too many open files; retrying in 1s"
	for range 5 {
		el.Print(accept)
		clock = clock.Add(time.Second)
	}
	clock = clock.Add(httpErrorInterval) // well past the interval since the first line
	el.Printf("http: panic serving %s: %s", "127.0.0.1:5000", "boom")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["err"] != accept || lines[0]["suppressed"] != 0.0 ||
		lines[1]["err"] != "http: panic serving 127.0.0.1:5000: boom" || lines[1]["suppressed"] != 4.0 ||
		lines[0]["level"] != "error" || lines[0]["message"] != "http server error" {
		t.Errorf("logged %v", lines)
	}
	if h.Count() != 6 {
		t.Errorf("count = %d, want 6", h.Count())
	}
}
