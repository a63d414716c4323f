package clients

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

const testSocketID = "123.456"

// fakeServer is a minimal realtime server: after each upgrade it runs the test's script on the
// connection. Scripts report problems with t.Errorf and keep reading (drain) while they wait, so that
// pings and the close handshake are answered.
type fakeServer struct {
	*httptest.Server
	reqs chan *http.Request // upgrade requests, in order
}

func newFakeServer(t *testing.T, script func(ctx context.Context, ws *websocket.Conn)) *fakeServer {
	t.Helper()
	fs := &fakeServer{reqs: make(chan *http.Request, 16)}
	var running sync.WaitGroup
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Done()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer ws.CloseNow()
		select {
		case fs.reqs <- r:
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		script(ctx, ws)
	}))
	t.Cleanup(func() {
		fs.Close()
		running.Wait() // no script may report after the test has ended
	})
	return fs
}

// url is the socket URL of an app key on the fake server.
func (fs *fakeServer) url(key string) string {
	return "ws" + strings.TrimPrefix(fs.URL, "http") + "/app/" + key
}

func (fs *fakeServer) request(t *testing.T) *http.Request {
	t.Helper()
	select {
	case r := <-fs.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no upgrade request")
		return nil
	}
}

// write sends one text frame from a script.
func write(t *testing.T, ctx context.Context, ws *websocket.Conn, frame []byte) {
	t.Helper()
	if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
		t.Errorf("server write: %v", err)
	}
}

// establish sends the first frame of a connection.
func establish(t *testing.T, ctx context.Context, ws *websocket.Conn) {
	t.Helper()
	write(t, ctx, ws, pusher.ConnectionEstablishedFrame(testSocketID, 30))
}

// drain reads until the client goes away, so pings and the close handshake are answered.
func drain(ctx context.Context, ws *websocket.Conn) {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
	}
}

// received is one message a script read from the client.
type received struct {
	typ   websocket.MessageType
	frame []byte
}

// recordAll establishes the connection, then forwards every message the client sends.
func recordAll(t *testing.T, got chan<- received) func(context.Context, *websocket.Conn) {
	return func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			got <- received{typ, b}
		}
	}
}

func dialTest(t *testing.T, url string, opts *DialOptions) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, ctx context.Context, c *Conn) Event {
	t.Helper()
	ev, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return ev
}

// nextFrame returns the next message the server received, decoded.
func nextFrame(t *testing.T, ctx context.Context, got <-chan received) pusher.ClientFrame {
	t.Helper()
	select {
	case r := <-got:
		f, perr := pusher.DecodeClientFrame(r.frame)
		if perr != nil {
			t.Fatalf("client sent %q: %v", r.frame, perr)
		}
		return f
	case <-ctx.Done():
		t.Fatal("server received nothing")
		return pusher.ClientFrame{}
	}
}

// dataOf decodes a client frame's data object.
func dataOf(t *testing.T, f pusher.ClientFrame) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("data %s is not an object: %v", f.Data, err)
	}
	return m
}

func TestDialAndEvents(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		write(t, ctx, ws, pusher.EventFrame("greet", "presence-a", `{"hello":"wörld \"q\""}`, "42"))
		write(t, ctx, ws, pusher.ErrorFrame(&pusher.Error{Code: 4301, Message: "Client event rejected due to rate limit"}))
		write(t, ctx, ws, pusher.ErrorFrame(&pusher.Error{Message: "Received invalid JSON"}))
		write(t, ctx, ws, []byte(`not json`))
		write(t, ctx, ws, []byte(`{"event":"e","data":{"object":true}}`))
		if err := ws.Write(ctx, websocket.MessageBinary, []byte{1, 2}); err != nil {
			t.Errorf("server write: %v", err)
		}
		write(t, ctx, ws, pusher.EventFrame("last", "", "", ""))
		drain(ctx, ws)
	})
	hdr := http.Header{"X-Test": {"yes"}}
	c := dialTest(t, fs.url(testKey), &DialOptions{Header: hdr})
	ctx := testContext(t)

	if c.SocketID() != testSocketID || c.ActivityTimeout() != 30*time.Second {
		t.Errorf("socket id %q, activity timeout %v; want %s, 30s", c.SocketID(), c.ActivityTimeout(), testSocketID)
	}
	r := fs.request(t)
	if r.URL.Path != "/app/"+testKey || r.URL.Query().Get("protocol") != "7" || r.URL.Query().Get("client") != "herald-go" {
		t.Errorf("upgrade URL = %s, want /app/KEY?protocol=7&client=herald-go…", r.URL)
	}
	if r.Header.Get("X-Test") != "yes" {
		t.Errorf("header X-Test not sent")
	}

	want := []Event{
		{Event: "greet", Channel: "presence-a", Data: `{"hello":"wörld \"q\""}`, UserID: "42"},
		{Event: "pusher:error", Data: `{"code":4301,"message":"Client event rejected due to rate limit"}`},
		{Event: "pusher:error", Data: `{"code":null,"message":"Received invalid JSON"}`},
		{Data: "not json"},
		{Event: "e", Data: `{"object":true}`},
		{Event: "last"}, // the binary frame is skipped
	}
	for i, w := range want {
		if ev := next(t, ctx, c); ev != w {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
}

func TestEventPusherError(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		want *pusher.Error
	}{
		{Event{Event: "pusher:error", Data: `{"code":4009,"message":"Unauthorized"}`}, &pusher.Error{Code: 4009, Message: "Unauthorized"}},
		{Event{Event: "pusher:error", Data: `{"code":null,"message":"bad"}`}, &pusher.Error{Message: "bad"}},
		{Event{Event: "pusher:subscription_error", Channel: "private-a", Data: `{"type":"AuthError","error":"Invalid signature","status":401}`},
			&pusher.Error{Message: "Invalid signature", Status: 401, Type: "AuthError"}},
		{Event{Event: "pusher:error", Data: `oops`}, nil},
		{Event{Event: "other", Data: `{"code":1}`}, nil},
	} {
		got, ok := tc.ev.PusherError()
		if ok != (tc.want != nil) || (ok && *got != *tc.want) {
			t.Errorf("%+v.PusherError() = %+v, %v; want %+v", tc.ev, got, ok, tc.want)
		}
	}
}

func TestDialURL(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		drain(ctx, ws)
	})
	for _, tc := range []struct {
		url, protocol, wantQuery string
	}{
		{"/app/k?protocol=5&client=java-client", "", "protocol=5&client=java-client"}, // sent as given
		{"/app/k?", "", ""}, // push.js: no query at all
		{"/app/k", "6", "protocol=6&client=herald-go&version=" + sdkVersion},
	} {
		base := "ws" + strings.TrimPrefix(fs.URL, "http")
		c := dialTest(t, base+tc.url, &DialOptions{Protocol: tc.protocol})
		if r := fs.request(t); r.URL.RawQuery != tc.wantQuery {
			t.Errorf("dial %s: query %q, want %q", tc.url, r.URL.RawQuery, tc.wantQuery)
		}
		c.Close()
	}
}

func TestDialRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(context.Context, *websocket.Conn)
		want   DialError
	}{
		{"error and close", func(ctx context.Context, ws *websocket.Conn) {
			msg := "App key nope not in this cluster"
			write(t, ctx, ws, pusher.ErrorFrame(pusher.CloseError(pusher.CodeAppNotFound, msg)))
			ws.Close(pusher.CodeAppNotFound, msg)
		}, DialError{Code: 4001, Message: "App key nope not in this cluster", CloseCode: 4001}},
		{"close only", func(ctx context.Context, ws *websocket.Conn) {
			ws.Close(4003, "Application disabled")
		}, DialError{Code: 0, Message: "Application disabled", CloseCode: 4003}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t, tc.script)
			ctx := testContext(t)
			c, err := Dial(ctx, fs.url("nope"), nil)
			var de *DialError
			if !errors.As(err, &de) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("dial err = %v, want a *DialError", err)
			}
			if *de != tc.want {
				t.Errorf("DialError = %+v, want %+v", *de, tc.want)
			}
		})
	}
}

func TestDialBadHandshake(t *testing.T) {
	for name, first := range map[string]string{
		"other event":        `{"event":"pusher:pong","data":"{}"}`,
		"object data":        `{"event":"pusher:connection_established","data":{"socket_id":"1.2","activity_timeout":120}}`,
		"bad socket id":      `{"event":"pusher:connection_established","data":"{\"socket_id\":\"abc\",\"activity_timeout\":120}"}`,
		"no activity timout": `{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\"}"}`,
	} {
		t.Run(name, func(t *testing.T) {
			fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
				write(t, ctx, ws, []byte(first))
				drain(ctx, ws)
			})
			c, err := Dial(testContext(t), fs.url(testKey), nil)
			var de *DialError
			if err == nil || errors.As(err, &de) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("dial err = %v, want a handshake error", err)
			}
		})
	}
	// A server that answers the upgrade with an HTTP error fails the dial too.
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	if _, err := Dial(testContext(t), "ws"+strings.TrimPrefix(srv.URL, "http")+"/app/k", nil); err == nil {
		t.Fatal("dial of a plain HTTP server succeeded")
	}
}

func TestDialContextEndsWithHandshake(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		if _, _, err := ws.Read(ctx); err != nil { // wait until the test has cancelled the dial context
			return
		}
		write(t, ctx, ws, pusher.EventFrame("after", "", "", ""))
		drain(ctx, ws)
	})
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := Dial(dctx, fs.url(testKey), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cancel()
	ctx := testContext(t)
	if err := c.Send(ctx, []byte(`{"event":"go"}`)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if ev := next(t, ctx, c); ev.Event != "after" {
		t.Errorf("event = %+v, want after", ev)
	}
}

func TestSignedAuthorizer(t *testing.T) {
	presenceData := `{"user_id":"7","user_info":{"name":"Ann"}}`
	authorize := SignedAuthorizer(testKey, testSecret, func(ch string) string { return presenceData })
	for _, tc := range []struct {
		channel, wantData string
		signed            bool
	}{
		{"public", "", false},
		{"cache-x", "", false},
		{"#server-to-user-7", "", false},
		{"private-a", "", true},
		{"private-encrypted-a", "", true},
		{"presence-a", presenceData, true},
	} {
		a, data, err := authorize(testSocketID, tc.channel)
		if err != nil || data != tc.wantData {
			t.Errorf("%s: channel data %q, err %v; want %q", tc.channel, data, err, tc.wantData)
		}
		if !tc.signed {
			if a != "" {
				t.Errorf("%s: auth %q, want none", tc.channel, a)
			}
			continue
		}
		if err := auth.VerifyChannel(testKey, testSecret, a, testSocketID, tc.channel, data); err != nil {
			t.Errorf("%s: auth %q does not verify: %v", tc.channel, a, err)
		}
	}
	// Without channel data, a presence subscription is signed over socket_id:channel.
	a, data, _ := SignedAuthorizer(testKey, testSecret, nil)(testSocketID, "presence-a")
	if err := auth.VerifyChannel(testKey, testSecret, a, testSocketID, "presence-a", ""); data != "" || err != nil {
		t.Errorf("presence without channel data: data %q, verify %v", data, err)
	}
}

// subscriptionServer answers each pusher:subscribe: channels whose name contains "bad" are refused
// with pusher:error and pusher:subscription_error, others succeed after an unrelated event. It checks
// every signature with auth.VerifyChannel and reports the frames it read.
func subscriptionServer(t *testing.T, got chan<- pusher.ClientFrame) func(context.Context, *websocket.Conn) {
	return func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			f, perr := pusher.DecodeClientFrame(b)
			if perr != nil || f.Event != pusher.EventSubscribe {
				t.Errorf("server read %q, want pusher:subscribe", b)
				continue
			}
			got <- f
			var d pusher.SubscribeData
			if err := pusher.DecodeData(f.Data, &d); err != nil {
				t.Errorf("subscribe data %s: %v", f.Data, err)
				continue
			}
			if kind, _ := pusher.KindOf(d.Channel); kind.NeedsSignature() {
				if err := auth.VerifyChannel(testKey, testSecret, d.Auth, testSocketID, d.Channel, string(d.ChannelData)); err != nil {
					t.Errorf("subscribe %s: %v", d.Channel, err)
				}
			}
			if strings.Contains(d.Channel, "bad") {
				pe := pusher.AuthError("Invalid signature")
				write(t, ctx, ws, pusher.ErrorFrame(pe))
				write(t, ctx, ws, pusher.SubscriptionErrorFrame(d.Channel, pe))
				continue
			}
			write(t, ctx, ws, pusher.EventFrame("unrelated", "other", "{}", ""))
			data := "{}"
			if kind, _ := pusher.KindOf(d.Channel); kind == pusher.KindPresence {
				data = pusher.PresenceData([]pusher.Member{{UserID: "7"}})
			}
			write(t, ctx, ws, pusher.EventFrame(pusher.EventSubscriptionSucceeded, d.Channel, data, ""))
		}
	}
}

func TestSubscribeAndWait(t *testing.T) {
	got := make(chan pusher.ClientFrame, 16)
	fs := newFakeServer(t, subscriptionServer(t, got))
	c := dialTest(t, fs.url(testKey), nil)
	ctx := testContext(t)
	authorize := SignedAuthorizer(testKey, testSecret, func(string) string { return `{"user_id":"7"}` })

	ev, err := c.SubscribeAndWait(ctx, "public", nil)
	if err != nil || ev.Event != pusher.EventSubscriptionSucceeded || ev.Channel != "public" || ev.Data != "{}" {
		t.Fatalf("public: %+v, %v", ev, err)
	}
	if d := dataOf(t, <-got); len(d) != 2 || d["auth"] != "" || d["channel"] != "public" {
		t.Errorf("public subscribe data = %v, want auth \"\" and channel", d)
	}

	if _, err := c.SubscribeAndWait(ctx, "private-a", authorize); err != nil {
		t.Fatalf("private: %v", err)
	}
	if d := dataOf(t, <-got); d["channel_data"] != nil {
		t.Errorf("private subscribe sent channel_data %v", d["channel_data"])
	}

	ev, err = c.SubscribeAndWait(ctx, "presence-room", authorize)
	if err != nil || !strings.Contains(ev.Data, `"count":1`) {
		t.Fatalf("presence: %+v, %v", ev, err)
	}
	if d := dataOf(t, <-got); d["channel_data"] != `{"user_id":"7"}` {
		t.Errorf("presence channel_data = %v", d["channel_data"])
	}

	ev, err = c.SubscribeAndWait(ctx, "private-bad", authorize)
	var pe *pusher.Error
	if !errors.As(err, &pe) || pe.Message != "Invalid signature" || ev.Event != pusher.EventError {
		t.Fatalf("refused subscribe = %+v, %v; want the pusher:error as *pusher.Error", ev, err)
	}
	<-got
	// The channel-scoped report that followed stays queued, as documented.
	if ev := next(t, ctx, c); ev.Event != pusher.EventSubscriptionError || ev.Channel != "private-bad" {
		t.Errorf("after refusal: %+v, want the pusher:subscription_error", ev)
	}

	failing := func(string, string) (string, string, error) { return "", "", errors.New("auth endpoint down") }
	if err := c.Subscribe(ctx, "private-x", failing); err == nil || !strings.Contains(err.Error(), "auth endpoint down") {
		t.Errorf("subscribe with failing authorizer: %v", err)
	}
}

func TestSubscribeAndWaitSubscriptionError(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
		// A subscription error on another channel is skipped; the one on ours ends the wait.
		write(t, ctx, ws, pusher.SubscriptionErrorFrame("other", pusher.AuthError("x")))
		write(t, ctx, ws, pusher.SubscriptionErrorFrame("presence-full", pusher.LimitError(403, "Presence channel full")))
		drain(ctx, ws)
	})
	c := dialTest(t, fs.url(testKey), nil)
	ev, err := c.SubscribeAndWait(testContext(t), "presence-full", nil)
	var pe *pusher.Error
	if !errors.As(err, &pe) || pe.Status != 403 || pe.Type != pusher.TypeLimitReached || ev.Channel != "presence-full" {
		t.Fatalf("SubscribeAndWait = %+v, %v; want the LimitReached subscription error", ev, err)
	}
}

func TestOutgoingFrames(t *testing.T) {
	got := make(chan received, 16)
	fs := newFakeServer(t, recordAll(t, got))
	c := dialTest(t, fs.url(testKey), nil)
	ctx := testContext(t)

	if err := c.Trigger(ctx, "private-a", "client-typing", `{"who":"ann"}`); err != nil {
		t.Fatal(err)
	}
	f := nextFrame(t, ctx, got)
	if s, err := pusher.TextOf(f.Data); f.Event != "client-typing" || f.Channel != "private-a" || f.Data[0] != '"' || err != nil || s != `{"who":"ann"}` {
		t.Errorf("string client event = %+v (data %s), want data as the JSON string given", f, f.Data)
	}

	if err := c.Trigger(ctx, "presence-b", "client-move", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, ctx, got); string(f.Data) != `{"x":1}` || f.Channel != "presence-b" {
		t.Errorf("object client event = %+v (data %s), want data as an object", f, f.Data)
	}
	if err := c.Trigger(ctx, "private-a", "client-bad", func() {}); err == nil {
		t.Error("trigger with unencodable data succeeded")
	}

	if err := c.Unsubscribe(ctx, "private-a"); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, ctx, got); f.Event != pusher.EventUnsubscribe || dataOf(t, f)["channel"] != "private-a" {
		t.Errorf("unsubscribe frame = %+v (data %s)", f, f.Data)
	}

	userData := `{"id":"7","user_info":{"name":"Ann"}}`
	sig := auth.SignUser(testKey, testSecret, c.SocketID(), userData)
	if err := c.Signin(ctx, userData, sig); err != nil {
		t.Fatal(err)
	}
	f = nextFrame(t, ctx, got)
	d := dataOf(t, f)
	if f.Event != pusher.EventSignin || d["user_data"] != userData || d["auth"] != sig {
		t.Errorf("signin frame = %+v (data %s)", f, f.Data)
	}
	if err := auth.VerifyUser(testKey, testSecret, sig, testSocketID, d["user_data"].(string)); err != nil {
		t.Errorf("signin auth does not verify: %v", err)
	}

	if err := c.Send(ctx, []byte(`{garbage`)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendBinary(ctx, []byte{0, 1}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []received{{websocket.MessageText, []byte(`{garbage`)}, {websocket.MessageBinary, []byte{0, 1}}} {
		select {
		case r := <-got:
			if r.typ != want.typ || string(r.frame) != string(want.frame) {
				t.Errorf("server received %v %q, want %v %q", r.typ, r.frame, want.typ, want.frame)
			}
		case <-ctx.Done():
			t.Fatal("server received nothing")
		}
	}
}

func TestServerClose(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		write(t, ctx, ws, pusher.EventFrame("e1", "c", "1", ""))
		write(t, ctx, ws, pusher.EventFrame("e2", "c", "2", ""))
		write(t, ctx, ws, pusher.ErrorFrame(pusher.CloseError(pusher.CodeUnauthorized, "Terminated")))
		ws.Close(pusher.CodeUnauthorized, "Terminated")
	})
	c := dialTest(t, fs.url(testKey), nil)
	ctx := testContext(t)

	var events []string
	for ev := range c.Events() { // ends when the connection does, after the queued events
		events = append(events, ev.Event)
	}
	if want := "e1 e2 pusher:error"; strings.Join(events, " ") != want {
		t.Errorf("events = %v, want %s", events, want)
	}
	if got := c.CloseStatus(); got != pusher.CodeUnauthorized {
		t.Errorf("CloseStatus = %d, want 4009", got)
	}
	if err := c.Err(); websocket.CloseStatus(err) != pusher.CodeUnauthorized {
		t.Errorf("Err = %v, want one carrying close status 4009", err)
	}
	if _, err := c.Next(ctx); websocket.CloseStatus(err) != pusher.CodeUnauthorized {
		t.Errorf("Next after the end = %v, want the close error", err)
	}
	if err := c.Send(ctx, []byte(`{}`)); err == nil {
		t.Error("send on an ended connection succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close after the server closed: %v", err)
	}
}

func TestClose(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		for i := 0; i < 5; i++ {
			write(t, ctx, ws, pusher.EventFrame("e", "c", "", ""))
		}
		_, _, err := ws.Read(ctx)
		closed <- websocket.CloseStatus(err)
	})
	// The application reads nothing, so the reader gets stuck on a full queue; a ping that gets no
	// answer shows it is.
	c := dialTest(t, fs.url(testKey), &DialOptions{EventBuffer: 1})
	ctx := testContext(t)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := c.Ping(short); err == nil {
		t.Fatal("ping answered although the reader should be blocked")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case code := <-closed:
		if code != websocket.StatusNormalClosure {
			t.Errorf("server saw close status %d, want 1000", code)
		}
	case <-ctx.Done():
		t.Fatal("server saw no close")
	}
	n := 0
	for range c.Events() { // closed by the time Close returns; queued events stay readable
		n++
	}
	if n != 1 {
		t.Errorf("%d events left after close, want the 1 queued", n)
	}
	if c.Err() == nil {
		t.Error("Err is nil after close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestBackPressure(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		write(t, ctx, ws, pusher.EventFrame("e1", "c", "", ""))
		write(t, ctx, ws, pusher.EventFrame("e2", "c", "", ""))
		drain(ctx, ws) // answers pings: the pong follows e2 on the wire
	})
	c := dialTest(t, fs.url(testKey), &DialOptions{EventBuffer: 1})
	ctx := testContext(t)

	// e1 fills the queue and the reader holds e2, so it cannot read the pong behind it.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := c.Ping(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping with a full queue = %v, want a timeout", err)
	}
	if ev := next(t, ctx, c); ev.Event != "e1" {
		t.Fatalf("event = %+v, want e1", ev)
	}
	if ev := next(t, ctx, c); ev.Event != "e2" {
		t.Fatalf("event = %+v, want e2", ev)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("ping once the queue drained: %v", err)
	}
}

func TestOnEvent(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		for i := 0; i < 100; i++ {
			write(t, ctx, ws, pusher.EventFrame("tick", "c", "", ""))
		}
		write(t, ctx, ws, pusher.EventFrame(pusher.EventSubscriptionSucceeded, "c", "{}", ""))
		drain(ctx, ws)
	})
	var ticks int // owned by the reader goroutine until the queued event below is received
	c := dialTest(t, fs.url(testKey), &DialOptions{EventBuffer: 1, OnEvent: func(ev Event) bool {
		if ev.Event == "tick" {
			ticks++
			return true
		}
		return false
	}})
	ev := next(t, testContext(t), c)
	if ev.Event != pusher.EventSubscriptionSucceeded || ticks != 100 {
		t.Errorf("queued %+v after %d consumed ticks, want subscription_succeeded after 100", ev, ticks)
	}
}

func TestLocalAddr(t *testing.T) {
	fs := newFakeServer(t, func(ctx context.Context, ws *websocket.Conn) {
		establish(t, ctx, ws)
		drain(ctx, ws)
	})
	from := netip.MustParseAddr("127.0.0.2")
	dialTest(t, fs.url(testKey), &DialOptions{LocalAddr: from})
	host, _, _ := net.SplitHostPort(fs.request(t).RemoteAddr)
	if host != from.String() {
		t.Errorf("server saw the client at %s, want %s", host, from)
	}
	_, err := Dial(testContext(t), fs.url(testKey), &DialOptions{LocalAddr: from, HTTPClient: http.DefaultClient})
	if err == nil {
		t.Error("dial with LocalAddr and HTTPClient succeeded")
	}
}

// BenchmarkReceive measures the reader's cost per event (read, decode, hand to OnEvent), the work
// herald-bench does for every delivered message.
func BenchmarkReceive(b *testing.B) {
	frame := pusher.EventFrame("price", "ticker-eurusd", `{"bid":1.08412,"ask":1.08415,"ts":1767225600123456789}`, "")
	start := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := context.Background()
		ws.Write(ctx, websocket.MessageText, pusher.ConnectionEstablishedFrame(testSocketID, 30))
		for n := range start {
			for i := 0; i < n; i++ {
				if ws.Write(ctx, websocket.MessageText, frame) != nil {
					return
				}
			}
		}
	}))
	defer srv.Close()
	seen, want := 0, b.N
	done := make(chan struct{})
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/app/k", &DialOptions{
		OnEvent: func(Event) bool {
			if seen++; seen == want {
				done <- struct{}{}
			}
			return true
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	start <- b.N
	<-done
	b.StopTimer()
	close(start)
}
