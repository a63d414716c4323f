//go:build unix

package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// TestReloadOnSIGHUP: a changed config file is applied on SIGHUP without touching the apps it
// leaves alone: an unchanged app's client stays connected, a changed app's clients are told to
// reconnect (4200) and its new secret signs from then on, a removed app's clients are closed with
// 4001, a new app accepts connections. A file that does not load changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	app := func(id, secret string) string {
		return `{"id": "` + id + `", "key": "k` + id + `", "secret": "` + secret + `"}`
	}
	path := writeConfig(t, `{"apps": [`+app("a", "old")+`, `+app("b", "sb")+`, `+app("d", "sd")+`]}`)
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--config", path}, nil)
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(key string) (*clients.Conn, error) {
		c, err := clients.Dial(ctx, "ws://"+addr+"/app/"+key, nil)
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, err
	}
	changed, _ := dial("ka")
	same, _ := dial("kb")
	removed, _ := dial("kd")
	if changed == nil || same == nil || removed == nil {
		t.Fatal("could not connect before the reload")
	}

	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"apps": [` + app("a", "new") + `, ` + app("b", "sb") + `, ` + app("c", "sc") + `]}`)
	waitLog(t, "configuration reloaded")
	if _, err := dial("kc"); err != nil {
		t.Fatalf("the new app is refused after the reload: %v", err)
	}
	for conn, want := range map[*clients.Conn]int{changed: pusher.CodeReconnect, removed: pusher.CodeAppNotFound} {
		if _, err := conn.WaitFor(ctx, func(clients.Event) bool { return false }); err == nil || ctx.Err() != nil {
			t.Fatalf("a connection of a changed or removed app stayed open: %v", err)
		}
		if got := conn.CloseStatus(); int(got) != want {
			t.Errorf("closed with %d, want %d", got, want)
		}
	}
	if err := same.Send(ctx, []byte(`{"event":"pusher:ping"}`)); err != nil {
		t.Fatal(err)
	}
	expectEvent(ctx, t, same, "", pusher.EventPong) // the unchanged app's client was not touched
	rest := func(secret string) error {
		_, err := clients.NewREST(clients.RESTConfig{BaseURL: "http://" + addr, AppID: "a", Key: "ka", Secret: secret}).Channels(ctx, "", "")
		return err
	}
	if rest("new") != nil || rest("old") == nil {
		t.Error("after the reload the changed app's REST API does not take the new secret alone")
	}

	write(`{"apps": [` + app("e", "se") + `,]}`) // not JSON: refused, the running apps stay
	waitLog(t, "reload refused")
	write(`{"apps": [` + app("e", "se") + `, {"id": "f"}]}`) // f has no key: refused as a whole
	waitLog(t, "reload refused")
	if err := same.Send(ctx, []byte(`{"event":"pusher:ping"}`)); err != nil {
		t.Fatal(err)
	}
	expectEvent(ctx, t, same, "", pusher.EventPong)
	if _, err := dial("ke"); err == nil {
		t.Error("an app of a file that does not load was put in place")
	}
	if _, err := dial("kc"); err != nil {
		t.Errorf("a refused reload removed an app: %v", err)
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}
