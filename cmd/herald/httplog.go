package main

import (
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// httpErrorInterval is the least time between two logged net/http errors. At the open-files limit
// net/http fails every accept and retries within a second, forever; one line per interval, with the
// count of those left out, keeps the log readable and its volume bounded.
const httpErrorInterval = 10 * time.Second

// httpErrors receives what net/http reports through http.Server.ErrorLog (accept failures, panics in
// handlers, misused ResponseWriters) and logs it as JSON like every other line, at most once per
// httpErrorInterval. Every report is counted, logged or not, for a metric.
type httpErrors struct {
	log   *zerolog.Logger
	now   func() time.Time
	total atomic.Int64

	mu         sync.Mutex
	last       time.Time // when a report was last logged
	suppressed int64     // reports since then that were not
}

func newHTTPErrors(log *zerolog.Logger) *httpErrors {
	return &httpErrors{log: log, now: time.Now}
}

// logger is the http.Server.ErrorLog writing to h.
func (h *httpErrors) logger() *log.Logger { return log.New(h, "", 0) }

// Count is how many errors net/http has reported.
func (h *httpErrors) Count() int64 { return h.total.Load() }

// Write takes one report; log.Logger calls it once per message.
func (h *httpErrors) Write(p []byte) (int, error) {
	h.total.Add(1)
	h.mu.Lock()
	now := h.now()
	if !h.last.IsZero() && now.Sub(h.last) < httpErrorInterval {
		h.suppressed++
		h.mu.Unlock()
		return len(p), nil
	}
	suppressed := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	h.log.Error().Str("err", strings.TrimSpace(string(p))).Int64("suppressed", suppressed).
		Msg("http server error")
	return len(p), nil
}
