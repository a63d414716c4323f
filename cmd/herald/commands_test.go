package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

func runCommand(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, ok := subcommand(args, env(vars), &out, &errOut)
	if !ok {
		t.Fatalf("%v is not a subcommand", args)
	}
	return code, out.String(), errOut.String()
}

func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		if code, out, _ := runCommand(t, nil, arg); code != 0 || !strings.HasPrefix(out, "herald ") {
			t.Errorf("herald %s: %d %q", arg, code, out)
		}
	}
	if _, ok := subcommand([]string{"--addr", ":1"}, env(nil), &bytes.Buffer{}, &bytes.Buffer{}); ok {
		t.Error("flags were taken for a subcommand")
	}
}

// TestCheckConfigNamesEveryBadField: a file with several mistakes gets each named, one per line.
func TestCheckConfigNamesEveryBadField(t *testing.T) {
	bad := writeConfig(t, `{"max_queue_bytes": -1, "cache_ttl": -5, "log_format": "xml",
		"apps": [{"id": "1", "key": "k", "secret": "s", "webhooks": [{"url": "ftp://x"}]}]}`)
	code, _, errOut := runCommand(t, nil, "check-config", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"max_queue_bytes", "cache_ttl", "log_format", "apps[0].webhooks[0].url"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check-config did not name %s:\n%s", want, errOut)
		}
	}
	good := writeConfig(t, `{"apps": [{"id": "1", "key": "k", "secret": "s", "webhooks": [{"url": "http://h/"}]}]}`)
	if code, out, errOut := runCommand(t, nil, "check-config", good); code != 0 || !strings.Contains(out, "OK (1 apps, 1 webhook endpoints)") {
		t.Errorf("a good file: %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCommand(t, nil, "check-config"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}

// TestTriggerAndStatusCommands: herald trigger publishes to a subscribed client, signed from the
// environment, and sendToUser's --user form reaches a signed-in one; herald status prints the
// node's real numbers from its metrics listener.
func TestTriggerAndStatusCommands(t *testing.T) {
	vars := map[string]string{"HERALD_APP_ID": "7", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s3cret"}
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, vars)
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialSubscribed(ctx, t, "ws://"+addr+"/app/k")
	signedIn := dialSubscribed(ctx, t, "ws://"+addr+"/app/k")
	if err := signedIn.Signin(ctx, `{"id":"u9"}`, auth.SignUser("k", "s3cret", signedIn.SocketID(), `{"id":"u9"}`)); err != nil {
		t.Fatal(err)
	}
	expectEvent(ctx, t, signedIn, "", "pusher:signin_success")

	client := map[string]string{"HERALD_URL": "http://" + addr, "HERALD_APP_ID": "7", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s3cret"}
	if code, out, errOut := runCommand(t, client, "trigger", "--channel", "room", "--event", "paid", "--data", `{"id":42}`); code != 0 {
		t.Fatalf("trigger: %d %q %q", code, out, errOut)
	}
	if ev := expectEvent(ctx, t, c, "room", "paid"); ev.Data != `{"id":42}` {
		t.Errorf("delivered data %q", ev.Data)
	}
	if code, _, errOut := runCommand(t, client, "trigger", "--user", "u9", "--event", "direct"); code != 0 {
		t.Fatalf("trigger --user: %d %q", code, errOut)
	}
	expectEvent(ctx, t, signedIn, "#server-to-user-u9", "direct")
	client["HERALD_APP_SECRET"] = "wrong"
	if code, _, errOut := runCommand(t, client, "trigger", "--channel", "room", "--event", "x"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("a wrong secret: %d %q, want exit 1 and the 401", code, errOut)
	}
	if code, _, _ := runCommand(t, client, "trigger", "--channel", "room", "--event", "x", "--data", "{not json"); code != 2 {
		t.Errorf("bad --data: exit %d, want 2", code)
	}

	if code, out, errOut := runCommand(t, nil, "up", "--url", "http://"+addr); code != 0 || !strings.Contains(out, "200") {
		t.Errorf("herald up: %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCommand(t, map[string]string{"HERALD_ADDR": "127.0.0.1:1"}, "up"); code != 1 {
		t.Errorf("herald up against nothing: exit %d, want 1", code)
	}
	code, out, errOut := runCommand(t, nil, "status", "--metrics-url", "http://"+addrs["metrics served on /metrics"]+"/metrics")
	if code != 0 {
		t.Fatalf("status: %d %q", code, errOut)
	}
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "7" {
			row = f
		}
	}
	// app, connections, opened, channels, subscriptions: two sockets, one channel (room) and its two
	// subscriptions (the internal #server-to-user- channel is not counted).
	if len(row) < 5 || row[1] != "2" || row[2] != "2" || row[3] != "1" || row[4] != "2" {
		t.Errorf("status row for app 7 = %v, want 2 connections, 2 opened, 1 channel, 2 subscriptions:\n%s", row, out)
	}
	if !strings.Contains(out, "cluster: none") || !strings.Contains(out, "webhooks: 0 queued") {
		t.Errorf("status output:\n%s", out)
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}
