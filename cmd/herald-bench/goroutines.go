package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// goroutineCount reads the server's goroutine count from its debug listener (herald --debug-addr):
// the first line of /debug/pprof/goroutine?debug=1 is "goroutine profile: total N".
func goroutineCount(ctx context.Context, debugURL string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(debugURL, "/")+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutine count: %w", err)
	}
	defer resp.Body.Close()
	return parseGoroutineTotal(resp.Body)
}

func parseGoroutineTotal(r io.Reader) (int, error) {
	line, _ := bufio.NewReader(r).ReadString('\n')
	total, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine count: unexpected profile header %.60q", line)
	}
	return strconv.Atoi(total)
}
