package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

type pusherError struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

func decodeError(t *testing.T, ev clients.Event) pusherError {
	t.Helper()
	var e pusherError
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		t.Fatalf("pusher:error data %s is not an object: %v", ev.Data, err)
	}
	return e
}

func TestConnectionEstablished(t *testing.T) {
	h := start(t, channels.Config{})
	a, b := h.dial(nil), h.dial(nil)
	id := regexp.MustCompile(`^\d+\.\d+$`)
	if !id.MatchString(a.SocketID()) || !id.MatchString(b.SocketID()) {
		t.Errorf("socket ids %q %q do not match ^\\d+\\.\\d+$", a.SocketID(), b.SocketID())
	}
	if a.SocketID() == b.SocketID() {
		t.Error("two connections share a socket id")
	}
	if a.ActivityTimeout() != 120*time.Second {
		t.Errorf("activity_timeout = %v, want 120s", a.ActivityTimeout())
	}
}

func TestProtocolVersions(t *testing.T) {
	h := start(t, channels.Config{})
	for _, q := range []string{"?protocol=7&client=js&version=8.4.0&flash=false", "?protocol=5&client=java-client", "?protocol=4", "?protocol=6", "?"} {
		c, err := clients.Dial(ctxT(t), h.wsURL("/app/"+key+q), nil)
		if err != nil {
			t.Errorf("query %q refused: %v", q, err)
			continue
		}
		_ = c.Close()
	}
	for q, code := range map[string]int{"?protocol=3": 4007, "?protocol=99": 4007, "?protocol=abc": 4006} {
		_, err := clients.Dial(ctxT(t), h.wsURL("/app/"+key+q), nil)
		expectRefusal(t, err, code)
	}
}

func expectRefusal(t *testing.T, err error, code int) {
	t.Helper()
	var de *clients.DialError
	if !errors.As(err, &de) {
		t.Fatalf("dial error = %v, want a refusal with %d", err, code)
	}
	if de.Code != code || int(de.CloseCode) != code {
		t.Errorf("refused with pusher:error %d / close %d (%s), want %d for both", de.Code, de.CloseCode, de.Message, code)
	}
	if len(de.Message) > 123 {
		t.Errorf("reason is %d bytes, want at most 123", len(de.Message))
	}
}

func TestAdmissionRefusals(t *testing.T) {
	disabled := pusher.App{ID: "2", Key: "off-key", Secret: "s", Enabled: false}
	tlsOnly := pusher.App{ID: "3", Key: "tls-key", Secret: "s", Enabled: true, RequireTLS: true}
	quota := pusher.App{ID: "4", Key: "quota-key", Secret: "s", Enabled: true, MaxConnections: 2}
	h := start(t, channels.Config{Apps: []pusher.App{defaultApp(), disabled, tlsOnly, quota}})

	_, err := clients.Dial(ctxT(t), h.wsURL("/app/no-such-key"), nil)
	expectRefusal(t, err, pusher.CodeAppNotFound)
	_, err = clients.Dial(ctxT(t), h.wsURL("/app/off-key"), nil)
	expectRefusal(t, err, pusher.CodeAppDisabled)
	_, err = clients.Dial(ctxT(t), h.wsURL("/app/tls-key"), nil)
	expectRefusal(t, err, pusher.CodeTLSOnly)
	_, err = clients.Dial(ctxT(t), h.wsURL("/foo"), nil)
	expectRefusal(t, err, pusher.CodePathNotFound)

	first, err := clients.Dial(ctxT(t), h.wsURL("/app/quota-key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := clients.Dial(ctxT(t), h.wsURL("/app/quota-key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, err = clients.Dial(ctxT(t), h.wsURL("/app/quota-key"), nil)
	expectRefusal(t, err, pusher.CodeOverQuota)
	for _, c := range []*clients.Conn{first, second} {
		if err := c.Send(ctxT(t), []byte(`{"event":"pusher:ping"}`)); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, c, pusher.EventPong, "")
	}
}

func TestServerCapacity(t *testing.T) {
	h := start(t, channels.Config{MaxConnections: 1})
	h.dial(nil)
	_, err := clients.Dial(ctxT(t), h.wsURL("/app/"+key), nil)
	expectRefusal(t, err, pusher.CodeOverCapacity)
}

func TestSubprotocolEchoed(t *testing.T) {
	h := start(t, channels.Config{})
	ws, _, err := websocket.Dial(ctxT(t), h.wsURL("/app/"+key+"?protocol=7"), &websocket.DialOptions{Subprotocols: []string{"pusher-channels-protocol-7"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != "pusher-channels-protocol-7" {
		t.Errorf("subprotocol = %q, want the offered one", ws.Subprotocol())
	}
}

func TestPingPong(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	for _, f := range []string{`{"event":"pusher:ping","data":{}}`, `{"event":"pusher:ping"}`, `{"event":"pusher:ping","data":"{}"}`} {
		if err := c.Send(ctxT(t), []byte(f)); err != nil {
			t.Fatal(err)
		}
		if ev := expectEvent(t, c, pusher.EventPong, ""); ev.Data != "{}" {
			t.Errorf("pong data = %q, want \"{}\"", ev.Data)
		}
	}
	// An inbound pusher:pong is activity and gets no answer: the next thing seen is the ping's pong.
	_ = c.Send(ctxT(t), []byte(`{"event":"pusher:pong","data":{}}`))
	_ = c.Send(ctxT(t), []byte(`{"event":"pusher:ping"}`))
	expectEvent(t, c, pusher.EventPong, "")
	if err := c.Ping(ctxT(t)); err != nil {
		t.Errorf("WebSocket Ping frame not answered: %v", err)
	}
}

// TestLivenessProbe: a silent client that answers Ping frames stays connected across several probes;
// one that answers nothing is closed with 4201 after activity timeout + pong timeout.
func TestLivenessProbe(t *testing.T) {
	h := start(t, channels.Config{ActivityTimeout: time.Second, PongTimeout: time.Second})

	pings := make(chan struct{}, 8)
	answering, _, err := websocket.Dial(ctxT(t), h.wsURL("/app/"+key), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings <- struct{}{}; return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer answering.CloseNow()
	silent, _, err := websocket.Dial(ctxT(t), h.wsURL("/app/"+key), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { return false }, // never pong
	})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()

	readCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		for { // keep reading so Ping frames are seen; the client itself sends nothing
			if _, _, err := answering.Read(readCtx); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	var frames []string
	var closeErr error
	for {
		_, b, err := silent.Read(readCtx)
		if err != nil {
			closeErr = err
			break
		}
		frames = append(frames, string(b))
	}
	if got := websocket.CloseStatus(closeErr); got != pusher.CodePongNotReceived {
		t.Fatalf("silent client ended with %v (status %d), want close 4201", closeErr, got)
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Errorf("closed after %v, before activity timeout + pong timeout", elapsed)
	}
	if last := frames[len(frames)-1]; !strings.Contains(last, `"code":4201`) {
		t.Errorf("last frame before close = %s, want pusher:error 4201", last)
	}
	for range 2 {
		select {
		case <-pings:
		case <-readCtx.Done():
			t.Fatal("the answering client was never probed")
		}
	}
	if err := answering.Write(ctxT(t), websocket.MessageText, []byte(`{"event":"pusher:ping"}`)); err != nil {
		t.Errorf("answering client was disconnected: %v", err)
	}
}

func TestGracefulShutdownSends4200(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	h.subscribe(c, "room", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ev := expectEvent(t, c, pusher.EventError, "")
	if e := decodeError(t, ev); e.Code == nil || *e.Code != pusher.CodeReconnect {
		t.Errorf("shutdown error = %s, want code 4200", ev.Data)
	}
	if _, err := c.Next(ctxT(t)); err == nil || c.CloseStatus() != pusher.CodeReconnect {
		t.Errorf("after shutdown: err %v, close status %d, want 4200", err, c.CloseStatus())
	}
	if h.srv.Connections() != 0 {
		t.Errorf("%d connections left after Shutdown", h.srv.Connections())
	}
	resp, err := http.Get(h.http.URL + "/up")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/up while draining = %d, want 503", resp.StatusCode)
	}
}
