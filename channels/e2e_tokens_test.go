package channels_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// mint issues a token valid for ttl from now, or, with a negative ttl, one that expired that long ago.
func mint(t *testing.T, app string, claims auth.TokenClaims, ttl time.Duration) string {
	t.Helper()
	issued := time.Now()
	if ttl < 0 {
		issued, ttl = issued.Add(2*ttl), -ttl
	}
	tok, err := auth.NewToken(app, []byte(secret), claims, ttl, issued)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenAuth posts the form pusher-js posts to a token endpoint and returns status and decoded body.
func (h *harness) tokenAuth(endpoint, token string, form url.Values) (int, map[string]string, string) {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(h.t), "POST", h.http.URL+"/apps/"+appID+"/auth/"+endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	_ = json.Unmarshal(raw, &body)
	if resp.StatusCode == 200 && resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		h.t.Errorf("token answer without CORS header")
	}
	return resp.StatusCode, body, string(raw)
}

func TestTokenChannelAuthorization(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	token := mint(t, appID, auth.TokenClaims{UserID: "42", UserInfo: json.RawMessage(`{"name":"Ann"}`),
		Channels: []string{"private-user-42", "presence-room-*"}}, time.Minute)

	fromEndpoint := func(channel string) clients.Authorizer {
		return func(socketID, ch string) (string, string, error) {
			status, body, raw := h.tokenAuth("channel", token, url.Values{"socket_id": {socketID}, "channel_name": {ch}})
			if status != 200 {
				t.Fatalf("token auth for %s: %d %s", ch, status, raw)
			}
			return body["auth"], body["channel_data"], nil
		}
	}
	h.subscribe(c, "private-user-42", fromEndpoint("private-user-42"))
	ev := h.subscribe(c, "presence-room-7", fromEndpoint("presence-room-7"))
	if !strings.Contains(ev.Data, `"42":{"name":"Ann"}`) {
		t.Errorf("presence payload = %s, want the token's user and user_info", ev.Data)
	}

	form := url.Values{"socket_id": {c.SocketID()}, "channel_name": {"private-user-43"}}
	if status, _, raw := h.tokenAuth("channel", token, form); status != 403 || !strings.Contains(raw, "private-user-43") {
		t.Errorf("out-of-pattern channel: %d %s, want 403 naming the channel", status, raw)
	}
	form.Set("channel_name", "presence-room-1")
	cases := map[string]struct {
		token  string
		status int
	}{
		"missing token":  {"", 401},
		"expired token":  {mint(t, appID, auth.TokenClaims{UserID: "42", Channels: []string{"*"}}, -time.Minute), 401},
		"other app":      {mint(t, "other-app", auth.TokenClaims{UserID: "42", Channels: []string{"*"}}, time.Minute), 401},
		"wrong key":      {tamper(token), 401},
		"garbage":        {"not.a.token", 401},
		"encrypted":      {mint(t, appID, auth.TokenClaims{UserID: "42", Channels: []string{"private-encrypted-x"}}, time.Minute), 403},
		"public channel": {token, 400},
	}
	for name, tc := range cases {
		f := url.Values{"socket_id": {c.SocketID()}, "channel_name": {"presence-room-1"}}
		switch name {
		case "encrypted":
			f.Set("channel_name", "private-encrypted-x")
		case "public channel":
			f.Set("channel_name", "lobby")
		}
		if status, _, raw := h.tokenAuth("channel", tc.token, f); status != tc.status {
			t.Errorf("%s: %d %s, want %d", name, status, raw, tc.status)
		}
	}
	if status, _, _ := h.tokenAuth("channel", token, url.Values{"socket_id": {"nope"}, "channel_name": {"private-user-42"}}); status != 400 {
		t.Errorf("bad socket_id: %d, want 400", status)
	}
}

// tamper flips the last character of the signature.
func tamper(token string) string {
	last := token[len(token)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return token[:len(token)-1] + string(repl)
}

func TestTokenUserAuthentication(t *testing.T) {
	h := start(t, channels.Config{})
	c := h.dial(nil)
	token := mint(t, appID, auth.TokenClaims{UserID: "ann", Watchlist: []string{"bob"}}, time.Minute)
	status, body, raw := h.tokenAuth("user", token, url.Values{"socket_id": {c.SocketID()}})
	if status != 200 || body["auth"] == "" || body["user_data"] != `{"id":"ann","watchlist":["bob"]}` {
		t.Fatalf("user token auth = %d %s", status, raw)
	}
	if err := c.Signin(ctxT(t), body["user_data"], body["auth"]); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, c, pusher.EventSigninSuccess, "")
	expectWatchlist(t, c, map[string][]string{"offline": {"bob"}})
}

func TestTokenPreflight(t *testing.T) {
	h := start(t, channels.Config{})
	req, _ := http.NewRequestWithContext(ctxT(t), "OPTIONS", h.http.URL+"/apps/"+appID+"/auth/channel", nil)
	req.Header.Set("Origin", "https://static.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight = %d %v", resp.StatusCode, resp.Header)
	}
}
