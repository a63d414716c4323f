package channels_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/pusher"
)

// session is a hand-rolled pusher-js HTTP session: its requests, read as the raw SockJS lines.
type session struct {
	t    *testing.T
	base string // .../app/{key}/{server}/{session}
}

func (h *harness) session(prefix, id string) *session {
	return &session{t: h.t, base: h.http.URL + prefix + "/app/" + key + "/1/" + id}
}

func (s *session) post(kind, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctxT(s.t), http.MethodPost, s.base+"/"+kind+"?protocol=7&client=js&version=8.6.0&t=1&n=1", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

// poll makes one xhr request and returns its lines.
func (s *session) poll() []string {
	s.t.Helper()
	resp, err := s.post("xhr", "")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// send posts frames to xhr_send and returns the status.
func (s *session) send(body string) int {
	s.t.Helper()
	resp, err := s.post("xhr_send", body)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHTTPSessionPolling: a polling session opens (o), gets connection_established, subscribes
// through xhr_send and receives a REST publish, each line in SockJS framing.
func TestHTTPSessionPolling(t *testing.T) {
	h := start(t, channels.Config{})
	s := h.session("/pusher", "abcdefgh")
	if got := s.poll(); len(got) != 1 || got[0] != "o" {
		t.Fatalf("first poll %q, want the open frame", got)
	}
	if got := s.poll(); len(got) != 1 || !strings.HasPrefix(got[0], `a["{\"event\":\"pusher:connection_established\"`) {
		t.Fatalf("second poll %q, want connection_established", got)
	}
	if code := s.send(`["{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"room\"}}"]`); code != http.StatusNoContent {
		t.Fatalf("xhr_send: %d", code)
	}
	if got := s.poll(); len(got) != 1 || !strings.Contains(got[0], `subscription_succeeded`) {
		t.Fatalf("poll after subscribing %q", got)
	}
	if _, err := h.rest.Trigger(ctxT(t), []string{"room"}, "hello", `{"n":1}`, nil); err != nil {
		t.Fatal(err)
	}
	want := `a["{\"event\":\"hello\",\"channel\":\"room\",\"data\":\"{\\\"n\\\":1}\"}"]`
	if got := s.poll(); len(got) != 1 || got[0] != want {
		t.Fatalf("poll after a publish %q, want %q", got, want)
	}
	if code := s.send(`[]`); code != http.StatusNoContent { // pusher-js's ping on these transports
		t.Fatalf("an empty xhr_send (ping): %d", code)
	}
}

// TestHTTPSessionStreaming: a stream stays open and carries each publish as it happens, without the
// open frame again on a second stream of the same session.
func TestHTTPSessionStreaming(t *testing.T) {
	h := start(t, channels.Config{})
	s := h.session("", "stream01")
	resp, err := s.post("xhr_streaming", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Accel-Buffering") != "no" || !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
		t.Errorf("stream headers %v", resp.Header)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "o" {
		t.Fatalf("first line %q", got)
	}
	if got := next(); !strings.Contains(got, "connection_established") {
		t.Fatalf("second line %q", got)
	}
	s.send(`["{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"room\"}}"]`)
	if got := next(); !strings.Contains(got, "subscription_succeeded") {
		t.Fatalf("line %q", got)
	}
	for i := range 3 {
		if _, err := h.rest.Trigger(ctxT(t), []string{"room"}, "tick", strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
		if got := next(); !strings.Contains(got, `\"data\":\"`+strconv.Itoa(i)+`\"`) {
			t.Fatalf("line %q, want tick %d", got, i)
		}
	}
	resp.Body.Close()
	// pusher-js reopens its stream after 256 KB: the session goes on, with no second open frame.
	again, err := s.post("xhr_streaming", "")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Body.Close()
	if _, err := h.rest.Trigger(ctxT(t), []string{"room"}, "tick", "3", nil); err != nil {
		t.Fatal(err)
	}
	lines = bufio.NewScanner(again.Body)
	if got := next(); !strings.Contains(got, `\"data\":\"3\"`) {
		t.Fatalf("first line of the reopened stream %q, want the next tick", got)
	}
}

// TestHTTPSessionBadInput: an oversized xhr_send gets 413 and a pusher:error the client reads; a
// body that is not a JSON array gets 400; xhr_send for no session gets 404; the session goes on.
func TestHTTPSessionBadInput(t *testing.T) {
	h := start(t, channels.Config{MaxFrameBytes: 1024})
	s := h.session("", "badinput")
	s.poll()
	s.poll()
	big := `["` + strings.Repeat("x", 4096) + `"]`
	if code := s.send(big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized xhr_send: %d, want 413", code)
	}
	if code := s.send(`{"not":"an array"}`); code != http.StatusBadRequest {
		t.Errorf("malformed xhr_send: %d, want 400", code)
	}
	got := strings.Join(s.poll(), "\n")
	if !strings.Contains(got, "Message too large") || !strings.Contains(got, "Invalid xhr_send body") {
		t.Errorf("the client was not told: %q", got)
	}
	if code := s.send(`["{\"event\":\"pusher:ping\"}"]`); code != http.StatusNoContent {
		t.Errorf("the session did not go on: %d", code)
	}
	if got := strings.Join(s.poll(), "\n"); !strings.Contains(got, "pusher:pong") {
		t.Errorf("no pong after bad input: %q", got)
	}
	other := h.session("", "nosuchid")
	if code := other.send(`[]`); code != http.StatusNotFound {
		t.Errorf("xhr_send to no session: %d, want 404", code)
	}
}

// TestHTTPSessionRefusedAndCORS: an unknown key is refused in the session's framing (open, the
// pusher:error, the close with its code); a preflight is answered, and an app's allowed_origins
// applies to sessions too.
func TestHTTPSessionRefusedAndCORS(t *testing.T) {
	strict := pusher.App{ID: "2", Key: "strict-key", Secret: "s", Enabled: true, AllowedOrigins: []string{"https://shop.example"}}
	h := start(t, channels.Config{Apps: []pusher.App{defaultApp(), strict}})
	resp, err := http.Post(h.http.URL+"/pusher/app/nokey/1/refused1/xhr", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 3 || lines[0] != "o" ||
		!strings.Contains(lines[1], `4001`) || !strings.HasPrefix(lines[2], "c[4001,") {
		t.Fatalf("refusal %q", b)
	}
	preflight := func(appKey, origin string) *http.Response {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodOptions, h.http.URL+"/pusher/app/"+appKey+"/1/corscors/xhr_streaming", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight(key, "https://any.example")
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://any.example" ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Methods"), "POST") || ok.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight: %d %v", ok.StatusCode, ok.Header)
	}
	if got := preflight("strict-key", "https://evil.example"); got.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from a foreign origin: %d, want 403", got.StatusCode)
	}
	for _, st := range h.srv.AppStats() {
		if st.AppID == "2" && st.Refused["origin"] != 1 {
			t.Errorf("origin refusals of app 2: %d, want the preflight counted", st.Refused["origin"])
		}
	}
	if got := preflight("strict-key", "https://shop.example"); got.StatusCode != http.StatusNoContent {
		t.Errorf("preflight from the allowed origin: %d", got.StatusCode)
	}
}

// TestHTTPSessionClientGone: a session whose client stops polling ends after the session timeout, as
// a dropped socket: its presence member leaves, and a WebSocket member of the channel is told.
func TestHTTPSessionClientGone(t *testing.T) {
	h := start(t, channels.Config{HTTPSessionTimeout: 300 * time.Millisecond})
	watcher := h.dial(nil)
	h.subscribe(watcher, "presence-room", presenceAs("watcher"))
	s := h.session("", "goneaway")
	s.poll()
	lines := strings.Join(s.poll(), "\n")
	i := strings.Index(lines, `socket_id\\\":\\\"`)
	if i < 0 {
		t.Fatalf("no socket id in %q", lines)
	}
	socketID := lines[i+len(`socket_id\\\":\\\"`):]
	socketID = socketID[:strings.Index(socketID, `\\\"`)]
	channelData := `{"user_id":"leaver"}`
	auth := pusherAuth(socketID, "presence-room", channelData)
	frame := `{"event":"pusher:subscribe","data":{"channel":"presence-room","auth":"` + auth + `","channel_data":` + strconv.Quote(channelData) + `}}`
	s.send(`[` + strconv.Quote(frame) + `]`)
	if got := strings.Join(s.poll(), "\n"); !strings.Contains(got, "subscription_succeeded") {
		t.Fatalf("presence subscribe over the session: %q", got)
	}
	expectEvent(t, watcher, pusher.EventMemberAdded, "presence-room")
	// No more polls: the client is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := watcher.Next(ctx)
	if err != nil || ev.Event != pusher.EventMemberRemoved || !strings.Contains(ev.Data, "leaver") {
		t.Fatalf("after the client stopped polling: %+v %v, want member_removed for leaver", ev, err)
	}
}

// pusherAuth signs a presence or private subscription of socketID as the app's backend would.
func pusherAuth(socketID, channel, channelData string) string {
	return auth.SignChannel(key, secret, socketID, channel, channelData)
}
