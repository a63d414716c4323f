package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// TestRunServesAndShutsDownGracefully runs the real main loop: it serves the default app, and on
// SIGTERM tells connected clients to reconnect (4200) and exits 0.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--log-level", "info", "--debug-addr", "127.0.0.1:0"}, nil)
	addr := addrs[listening]

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.Get("http://" + addr + "/up")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/up = %v, %v", resp, err)
	}
	resp.Body.Close()
	// The profiles are on the debug listener only.
	for _, base := range []string{addrs[profiling], addr} {
		resp, err := http.Get("http://" + base + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if found := strings.HasPrefix(string(body), "goroutine profile: total "); found != (base != addr) {
			t.Errorf("GET %s/debug/pprof/goroutine: %d %.40q", base, resp.StatusCode, body)
		}
	}
	c := dialSubscribed(ctx, t, "ws://"+addr+"/app/app-key")

	// run catches SIGTERM from before it logs "herald listening", so the signal reaches it, not the
	// default action.
	sigterm(t)
	ev, err := c.WaitFor(ctx, func(e clients.Event) bool { return e.Event == pusher.EventError })
	if err != nil {
		t.Fatalf("no pusher:error before the close: %v", err)
	}
	if perr, _ := ev.PusherError(); perr == nil || perr.Code != pusher.CodeReconnect {
		t.Errorf("shutdown error = %s, want 4200", ev.Data)
	}
	expectExit(ctx, t, exit)
}

// expectExit waits for run to return after SIGTERM, with exit code 0.
func expectExit(ctx context.Context, t *testing.T, exit <-chan int) {
	t.Helper()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-ctx.Done():
		t.Fatal("herald did not exit after SIGTERM")
	}
}

// dialSubscribed connects to url and subscribes to "room"; the connection closes when the test ends.
func dialSubscribed(ctx context.Context, t *testing.T, url string) *clients.Conn {
	t.Helper()
	c, err := clients.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.SubscribeAndWait(ctx, "room", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// The log messages that carry the addresses of herald's listeners.
const (
	listening = "herald listening"
	profiling = "profiles served on /debug/pprof/"
)

// startRun runs herald's main loop in the background and returns the addresses of its listeners by
// log message (read up to the "herald listening" line), and the channel its exit code arrives on.
func startRun(t *testing.T, args []string, vars map[string]string) (map[string]string, <-chan int) {
	t.Helper()
	logR, logW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(args, env(vars), logW)
		logW.Close()
	}()
	lines := bufio.NewScanner(logR)
	addrs := map[string]string{}
	for addrs[listening] == "" && lines.Scan() {
		var entry struct{ Message, Addr string }
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Addr != "" {
			addrs[entry.Message] = entry.Addr
		}
	}
	logLines := make(chan string, 1000)
	go func() { // the rest of the log, for tests that wait for a line (runLog); dropped when unread
		for lines.Scan() {
			select {
			case logLines <- lines.Text():
			default:
			}
		}
	}()
	if addrs[listening] == "" {
		t.Fatal("herald never logged that it was listening")
	}
	runLogs.Store(t, logLines)
	return addrs, exit
}

// runLogs holds each test's herald log lines after "herald listening" (see startRun).
var runLogs sync.Map

// waitLog waits up to 10 s for a log line of the test's herald containing text.
func waitLog(t *testing.T, text string) {
	t.Helper()
	v, ok := runLogs.Load(t)
	if !ok {
		t.Fatal("no herald started by this test")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-v.(chan string):
			if strings.Contains(l, text) {
				return
			}
		case <-deadline:
			t.Fatalf("herald did not log %q within 10 s", text)
		}
	}
}

// TestRunFlushesWebhooksOnShutdown: with HERALD_WEBHOOK_URL set, a subscription produces a signed
// channel_occupied; on SIGTERM the connections are closed first and the channel_vacated they cause,
// although its 60 s delay has not passed, is delivered before herald exits.
func TestRunFlushesWebhooksOnShutdown(t *testing.T) {
	hooks := make(chan pusher.Webhook, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hook pusher.Webhook
		if r.Header.Get("X-Pusher-Signature") != auth.SignWebhook("s3cret", body) || r.Header.Get("X-Pusher-Key") != "k" {
			t.Errorf("bad signature or key: %v %s", r.Header, body)
		}
		if err := json.Unmarshal(body, &hook); err != nil {
			t.Error(err)
		}
		hooks <- hook
	}))
	defer receiver.Close()
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0"}, map[string]string{
		"HERALD_WEBHOOK_URL": receiver.URL, "HERALD_WEBHOOK_DELAY": "60",
		"HERALD_APP_ID": "7", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s3cret",
	})
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dialSubscribed(ctx, t, "ws://"+addr+"/app/k")
	next := func() string {
		select {
		case h := <-hooks:
			if len(h.Events) != 1 {
				t.Fatalf("events = %+v", h.Events)
			}
			return h.Events[0].Name + " " + h.Events[0].Channel
		case <-ctx.Done():
			t.Fatal("no webhook")
			return ""
		}
	}
	if got := next(); got != "channel_occupied room" {
		t.Fatalf("first webhook = %s", got)
	}
	sigterm(t)
	expectExit(ctx, t, exit)
	select {
	case h := <-hooks:
		if len(h.Events) != 1 || h.Events[0].Name != "channel_vacated" || h.Events[0].Channel != "room" {
			t.Errorf("webhook at shutdown = %+v", h.Events)
		}
	default:
		t.Fatal("herald exited without delivering channel_vacated")
	}
}

// TestRunExitCodes: a setting Herald cannot start with exits 2, a listener that cannot open exits 1,
// each with one "herald: " line naming the cause; --help exits 0.
func TestRunExitCodes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, ""},
		{[]string{"--log-level", "loud"}, 2, "herald: log_level (HERALD_LOG_LEVEL)"},
		{[]string{"--addr", "127.0.0.1:0", "--webhook-url", "ftp://x"}, 2, "herald: webhook_url (HERALD_WEBHOOK_URL)"},
		{[]string{"--addr", busy.Addr().String()}, 1, "herald: listen on " + busy.Addr().String()},
		{[]string{"--addr", "127.0.0.1:0", "--debug-addr", busy.Addr().String()}, 1, "herald: debug listener on " + busy.Addr().String()},
	} {
		var out strings.Builder
		code := run(tt.args, env(nil), &out)
		last := strings.TrimSpace(out.String())
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		if code != tt.code || (tt.want != "" && !strings.HasPrefix(last, tt.want)) {
			t.Errorf("run(%q) = %d, last line %q; want %d and %q", tt.args, code, last, tt.code, tt.want)
		}
	}
}

// TestRunCapsTokenLifetime: token_max_lifetime reaches the token endpoints; a longer-lived token is
// refused with a message naming the setting, a shorter one is accepted.
func TestRunCapsTokenLifetime(t *testing.T) {
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0"}, map[string]string{"HERALD_TOKEN_MAX_LIFETIME": "3600"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		ttl    time.Duration
		status int
		want   string
	}{
		{time.Hour, http.StatusOK, `"user_data"`},
		{2 * time.Hour, http.StatusUnauthorized, "token lifetime exceeds the 1h maximum (token_max_lifetime)"},
	} {
		token, err := auth.NewToken(defaultAppID, []byte(defaultAppSecret), auth.TokenClaims{UserID: "42"}, tt.ttl, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addrs[listening]+"/apps/"+defaultAppID+"/auth/user",
			strings.NewReader("socket_id=1.2"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("%v token: %d %s, want %d %s", tt.ttl, resp.StatusCode, body, tt.status, tt.want)
		}
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}

// TestRunSigninIDsAreReachable: sign-in refuses an id that sendToUser could not reach, saying so,
// and a user signed in with an id it accepts is reached by sendToUser and terminate_connections.
func TestRunSigninIDsAreReachable(t *testing.T) {
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0"}, nil)
	addr := addrs[listening]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := clients.Dial(ctx, "ws://"+addr+"/app/"+defaultAppKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	signin := func(userData string) clients.Event {
		t.Helper()
		if err := c.Signin(ctx, userData, auth.SignUser(defaultAppKey, defaultAppSecret, c.SocketID(), userData)); err != nil {
			t.Fatal(err)
		}
		ev, err := c.WaitFor(ctx, func(e clients.Event) bool {
			return e.Event == pusher.EventError || e.Event == pusher.EventSigninSuccess
		})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if ev := signin(`{"id":"a b/é"}`); ev.Event != pusher.EventError || !strings.Contains(ev.Data, "cannot be reached by sendToUser") {
		t.Fatalf("sign-in as \"a b/é\": %s %s, want a pusher:error saying why", ev.Event, ev.Data)
	}
	const id = "ann@example.com"
	if ev := signin(`{"id":"` + id + `"}`); ev.Event != pusher.EventSigninSuccess {
		t.Fatalf("sign-in as %s: %s %s", id, ev.Event, ev.Data)
	}
	rest := clients.NewREST(clients.RESTConfig{BaseURL: "http://" + addr, AppID: defaultAppID, Key: defaultAppKey, Secret: defaultAppSecret})
	if _, err := rest.Trigger(ctx, []string{pusher.ServerToUserPrefix + id}, "hello", `"hi"`, nil); err != nil {
		t.Fatalf("sendToUser: %v", err)
	}
	if _, err := c.WaitFor(ctx, func(e clients.Event) bool { return e.Event == "hello" }); err != nil {
		t.Fatalf("sendToUser did not arrive: %v", err)
	}
	if err := rest.TerminateUserConnections(ctx, id); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if _, err := c.WaitFor(ctx, func(clients.Event) bool { return false }); c.CloseStatus() != pusher.CodeUnauthorized {
		t.Errorf("after terminate: close %d (%v), want 4009", c.CloseStatus(), err)
	}
	sigterm(t)
	expectExit(ctx, t, exit)
}

// expectEvent waits for the next event named name on channel, skipping others, and returns it.
func expectEvent(ctx context.Context, t *testing.T, conn *clients.Conn, channel, name string) clients.Event {
	t.Helper()
	ev, err := conn.WaitFor(ctx, func(e clients.Event) bool { return e.Channel == channel && e.Event == name })
	if err != nil {
		t.Fatalf("waiting for %s on %s: %v", name, channel, err)
	}
	return ev
}
