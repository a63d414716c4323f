package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
)

// consoleWatch is a debug console page watching the app during a run, as a browser does: it signs
// in with the app's id and secret and reads the app's stream (Server-Sent Events) until the run ends,
// counting the feed events it receives.
type consoleWatch struct {
	events  atomic.Int64
	batches atomic.Int64
	done    chan struct{}
}

// watchConsole signs in to the console at base (http://host:port[/prefix]) and starts reading the
// app's stream; it stops with ctx.
func watchConsole(ctx context.Context, base, appID, secret string) (*consoleWatch, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	body := fmt.Sprintf(`{"app_id":%q,"secret":%q}`, appID, secret)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/console/api/signin", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("console sign-in: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("console sign-in: %s (is herald running with --console?)", resp.Status)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/console/api/apps/"+appID+"/stream", nil)
	if resp, err = hc.Do(req); err != nil {
		return nil, fmt.Errorf("console stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("console stream: %s", resp.Status)
	}
	w := &consoleWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		batch := false
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case strings.HasPrefix(string(line), "event: "):
				batch = string(line) == "event: batch"
			case batch && len(line) > 6:
				var b struct{ Events []json.RawMessage }
				if json.Unmarshal(line[len("data: "):], &b) == nil {
					w.batches.Add(1)
					w.events.Add(int64(len(b.Events)))
				}
			}
		}
	}()
	return w, nil
}
