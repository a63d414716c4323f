package console_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/channels/console"
	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

const adminToken = "an-admin-token-of-enough-length"

var apps = []pusher.App{
	{ID: "a", Key: "ka", Secret: "secret-a", Enabled: true, ClientEvents: true},
	{ID: "b", Key: "kb", Secret: "secret-b", Enabled: true},
}

type site struct {
	t   *testing.T
	srv *channels.Server
	url string
}

func startConsole(t *testing.T, tls bool) *site {
	t.Helper()
	srv, err := channels.New(channels.Config{Apps: apps, PathPrefix: "/ws"})
	if err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Config{Server: srv, PathPrefix: "/ws", AdminToken: adminToken, SnapshotEvery: 100 * time.Millisecond})
	h := c.Wrap(srv.Handler())
	var hs *httptest.Server
	if tls {
		hs = httptest.NewTLSServer(h)
	} else {
		hs = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return &site{t: t, srv: srv, url: hs.URL}
}

// browser is an HTTP client with its own cookies, as one browser is.
func (s *site) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func (s *site) post(c *http.Client, path, body string) (*http.Response, string) {
	s.t.Helper()
	resp, err := c.Post(s.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (s *site) get(c *http.Client, path string) (int, string) {
	s.t.Helper()
	resp, err := c.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSigninChecksTheSecretAndSetsAStrictCookie(t *testing.T) {
	s := startConsole(t, false)
	b := s.browser()
	if code, _ := s.get(b, "/console/api/session"); code != http.StatusUnauthorized {
		t.Fatalf("session before sign-in: %d, want 401", code)
	}
	for _, body := range []string{`{"app_id":"a","secret":"wrong"}`, `{"app_id":"nope","secret":"secret-a"}`, `{"token":"wrong"}`, `{}`} {
		if resp, got := s.post(b, "/console/api/signin", body); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("sign-in %s: %d %s, want 401", body, resp.StatusCode, got)
		}
	}
	resp, body := s.post(b, "/console/api/signin", `{"app_id":"a","secret":"secret-a"}`)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "secret-a") {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console" {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, Path=/console", ck)
	}
	code, session := s.get(b, "/console/api/session")
	if code != http.StatusOK || session != `{"admin":false,"apps":["a"]}`+"\n" {
		t.Fatalf("session: %d %s", code, session)
	}
	// An app's session opens that app only.
	if code, _ := s.get(b, "/console/api/apps/b/stream"); code != http.StatusForbidden {
		t.Fatalf("app b's stream with app a's session: %d, want 403", code)
	}
	if resp, _ := s.post(b, "/console/api/apps/b/events", `{"channel":"x","event":"e","data":"{}"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("publish to app b with app a's session: %d, want 403", resp.StatusCode)
	}
	// A forged cookie is no session.
	forged := s.browser()
	u, _ := http.NewRequest(http.MethodGet, s.url, nil)
	forged.Jar.SetCookies(u.URL, []*http.Cookie{{Name: ck.Name, Value: strings.Replace(ck.Value, "a.YQ", "a.Yg", 1), Path: "/console"}})
	if code, _ := s.get(forged, "/console/api/apps/b/stream"); code != http.StatusUnauthorized {
		t.Fatalf("forged cookie: %d, want 401", code)
	}
	// Signing out clears the cookie.
	if resp, _ := s.post(b, "/console/api/signout", `{}`); resp.StatusCode != http.StatusOK {
		t.Fatal("sign-out failed")
	}
	if code, _ := s.get(b, "/console/api/session"); code != http.StatusUnauthorized {
		t.Fatalf("session after sign-out: %d, want 401", code)
	}
}

func TestAdminTokenOpensEveryAppAndCookiesAreSecureOverTLS(t *testing.T) {
	s := startConsole(t, true)
	b := s.browser()
	b.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // httptest's certificate
	resp, body := s.post(b, "/ws/console/api/signin", `{"token":"`+adminToken+`"}`)
	if resp.StatusCode != http.StatusOK || body != `{"admin":true,"apps":["a","b"]}`+"\n" {
		t.Fatalf("admin sign-in: %d %s", resp.StatusCode, body)
	}
	if ck := resp.Cookies()[0]; !ck.Secure || ck.Path != "/ws/console" {
		t.Fatalf("cookie over TLS under the prefix: %+v, want Secure, Path=/ws/console", ck)
	}
	for _, app := range []string{"a", "b"} {
		resp, got := s.post(b, "/ws/console/api/apps/"+app+"/events", `{"channel":"x","event":"e","data":"{}"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin publish to %s: %d %s", app, resp.StatusCode, got)
		}
	}
	resp, got := s.post(b, "/ws/console/api/apps/a/events", `{"channel":"bad name!","event":"e","data":"{}"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(got, "channel") {
		t.Fatalf("publish to an invalid channel: %d %s, want 400 naming the channel", resp.StatusCode, got)
	}
}

func TestFailedSigninsAreRateLimited(t *testing.T) {
	s := startConsole(t, false)
	b := s.browser()
	for i := range 5 {
		if resp, _ := s.post(b, "/console/api/signin", `{"app_id":"a","secret":"guess"}`); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp, _ := s.post(b, "/console/api/signin", `{"app_id":"a","secret":"secret-a"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sign-in after 5 failures: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	s := startConsole(t, false)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/console/api/signin", strings.NewReader(`{"app_id":"a","secret":"secret-a"}`))
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin sign-in: %d, want 403", resp.StatusCode)
	}
}

func TestPageIsServedWithoutSecrets(t *testing.T) {
	s := startConsole(t, false)
	b := s.browser()
	for _, path := range []string{"/console/", "/ws/console/", "/console/static/console.js", "/console/static/console.css"} {
		code, body := s.get(b, path)
		if code != http.StatusOK || strings.Contains(body, "secret-a") {
			t.Fatalf("%s: %d", path, code)
		}
	}
	// Other paths still reach the server.
	if code, _ := s.get(b, "/up"); code != http.StatusOK {
		t.Fatalf("/up behind the console: %d", code)
	}
	if code, _ := s.get(b, "/consoles"); code != http.StatusNotFound {
		t.Fatalf("/consoles: %d, want the server's 404", code)
	}
}

// sse reads a stream's events into a channel.
func sse(t *testing.T, body io.Reader) <-chan [2]string {
	out := make(chan [2]string, 256)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				out <- [2]string{event, line[len("data: "):]}
			}
		}
	}()
	return out
}

func TestStreamShowsChannelsMembersAndEvents(t *testing.T) {
	s := startConsole(t, false)
	b := s.browser()
	if resp, _ := s.post(b, "/console/api/signin", `{"app_id":"a","secret":"secret-a"}`); resp.StatusCode != http.StatusOK {
		t.Fatal("sign-in failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/console/api/apps/a/stream", nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sse(t, resp.Body)

	conn, err := clients.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/app/ka", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	member := clients.SignedAuthorizer("ka", "secret-a", func(string) string {
		return `{"user_id":"ann","user_info":{"name":"Ann"}}`
	})
	if _, err := conn.SubscribeAndWait(ctx, "presence-room", member); err != nil {
		t.Fatal(err)
	}
	if r, body := s.post(b, "/console/api/apps/a/events", `{"channel":"presence-room","event":"hello","data":"{\"n\":1}"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("console publish: %d %s", r.StatusCode, body)
	}
	ev, err := conn.Next(ctx)
	if err != nil || ev.Event != "hello" || string(ev.Data) != `{"n":1}` {
		t.Fatalf("the console's event reached the client as %+v (%v)", ev, err)
	}

	var sawMembers, sawPublish bool
	for !sawMembers || !sawPublish {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			switch e[0] {
			case "channels":
				sawMembers = sawMembers || strings.Contains(e[1], `{"name":"presence-room","subscriptions":1,"users":1,"members":[{"id":"ann","info":{"name":"Ann"}}]}`)
			case "batch":
				var batch channels.FeedBatch
				if err := json.Unmarshal([]byte(e[1]), &batch); err != nil {
					t.Fatal(err)
				}
				for _, fe := range batch.Events {
					sawPublish = sawPublish || (fe.Kind == channels.FeedPublish && fe.Event == "hello")
				}
			}
		case <-ctx.Done():
			t.Fatalf("stream: members seen %v, console publish seen %v", sawMembers, sawPublish)
		}
	}
}

func TestStreamEndsWhenTheServerShutsDown(t *testing.T) {
	s := startConsole(t, false)
	b := s.browser()
	if resp, _ := s.post(b, "/console/api/signin", `{"app_id":"a","secret":"secret-a"}`); resp.StatusCode != http.StatusOK {
		t.Fatal("sign-in failed")
	}
	resp, err := b.Get(s.url + "/console/api/apps/a/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := sse(t, resp.Body)
	<-events // the first snapshot: the stream is up
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case _, open := <-events:
			if !open {
				return // the handler returned: the HTTP server's shutdown is not held by it
			}
		case <-ctx.Done():
			t.Fatal("the stream outlived the server's shutdown")
		}
	}
}
