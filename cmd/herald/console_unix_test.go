//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/redis/redistest"
	"github.com/herald-rt/herald/clients"
)

// TestConsoleCoversEveryNode watches an app on one node of a cluster and sees what happens on the
// other: its connections and their count, and its webhooks; its event creator reaches a client there.
func TestConsoleCoversEveryNode(t *testing.T) {
	redis := redistest.Start(t)
	config := writeConfig(t, `{"apps": [{"id": "a", "key": "ka", "secret": "sa"}, {"id": "b", "key": "kb", "secret": "sb"}]}`)
	var nodes []*child
	for _, id := range []string{"n1", "n2"} {
		nodes = append(nodes, startChild(t, 4096, "--addr", "127.0.0.1:0", "--config", config, "--redis-url", redis.URL(),
			"--node-id", id, "--console"))
	}
	for _, n := range nodes {
		go func() { // reads the log so the child never blocks on a full pipe
			for range n.lines {
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Post("http://"+nodes[0].addr+"/console/api/signin", "application/json", strings.NewReader(`{"app_id":"a","secret":"sa"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in on n1: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nodes[0].addr+"/console/api/apps/a/stream", nil)
	stream, err := browser.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("stream on n1: %v %v", stream, err)
	}
	defer stream.Body.Close()
	batches := make(chan channels.FeedBatch, 64)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "event: ") {
				event = line[len("event: "):]
			}
			var b channels.FeedBatch
			if event == "batch" && strings.HasPrefix(line, "data: ") && json.Unmarshal([]byte(line[len("data: "):]), &b) == nil {
				batches <- b
			}
		}
		close(batches)
	}()
	// waitFor reads batches until one from node satisfies ok.
	waitFor := func(what, node string, ok func(channels.FeedBatch) bool) {
		t.Helper()
		for {
			select {
			case b, open := <-batches:
				if !open {
					t.Fatalf("the stream ended waiting for %s", what)
				}
				if b.Node == node && ok(b) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no batch from %s with %s", node, what)
			}
		}
	}
	// The watch is announced to n2 through Redis; until n2 heard it, it sends nothing.
	waitFor("a first batch", "n2", func(channels.FeedBatch) bool { return true })

	conn, err := clients.Dial(ctx, "ws://"+nodes[1].addr+"/app/ka", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.SubscribeAndWait(ctx, "orders", nil); err != nil {
		t.Fatal(err)
	}
	waitFor("the connection, its subscription and its count", "n2", func(b channels.FeedBatch) bool {
		for _, e := range b.Events {
			if e.Kind == channels.FeedSubscribe && e.Channel == "orders" && e.SocketID == conn.SocketID() {
				return b.Connections == 1
			}
		}
		return false
	})
	// App b's connection on n2 never shows in app a's view.
	other, err := clients.Dial(ctx, "ws://"+nodes[1].addr+"/app/kb", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	resp, err = browser.Post("http://"+nodes[0].addr+"/console/api/apps/a/events", "application/json",
		strings.NewReader(`{"channel":"orders","event":"shipped","data":"{\"id\":7}"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("console publish on n1: %v %v", resp, err)
	}
	resp.Body.Close()
	ev, err := conn.Next(ctx)
	if err != nil || ev.Event != "shipped" || string(ev.Data) != `{"id":7}` {
		t.Fatalf("the client on n2 got %+v (%v), want the console's event", ev, err)
	}
	_ = conn.Close()
	waitFor("the disconnect", "n2", func(b channels.FeedBatch) bool {
		for _, e := range b.Events {
			if e.SocketID == other.SocketID() {
				t.Fatalf("app b's socket in app a's view: %+v", e)
			}
			if e.Kind == channels.FeedDisconnect && e.SocketID == conn.SocketID() {
				return true
			}
		}
		return false
	})
	waitFor("a count of 0", "n2", func(b channels.FeedBatch) bool { return b.Connections == 0 })
}
