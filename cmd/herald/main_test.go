package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// TestRunServesAndShutsDownGracefully runs the real main loop: it serves the default app, and on
// SIGTERM tells connected clients to reconnect (4200) and exits 0.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	logR, logW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"--addr", "127.0.0.1:0", "--log-level", "info"}, env(nil), logW)
		logW.Close()
	}()

	// The "herald listening" line carries the address.
	lines := bufio.NewScanner(logR)
	var addr string
	for addr == "" && lines.Scan() {
		var entry struct{ Message, Addr string }
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Message == "herald listening" {
			addr = entry.Addr
		}
	}
	go func() { _, _ = io.Copy(io.Discard, logR) }()
	if addr == "" {
		t.Fatal("herald never logged that it was listening")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.Get("http://" + addr + "/up")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/up = %v, %v", resp, err)
	}
	resp.Body.Close()
	c, err := clients.Dial(ctx, "ws://"+addr+"/app/app-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SubscribeAndWait(ctx, "room", nil); err != nil {
		t.Fatal(err)
	}

	// run catches SIGTERM from before it logs "herald listening", so the signal reaches it, not the
	// default action.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ev, err := c.WaitFor(ctx, func(e clients.Event) bool { return e.Event == pusher.EventError })
	if err != nil {
		t.Fatalf("no pusher:error before the close: %v", err)
	}
	if perr, _ := ev.PusherError(); perr == nil || perr.Code != pusher.CodeReconnect {
		t.Errorf("shutdown error = %s, want 4200", ev.Data)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-ctx.Done():
		t.Fatal("herald did not exit after SIGTERM")
	}
}
