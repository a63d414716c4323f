package clients

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

const (
	testAppID  = "1"
	testKey    = "278d425bdf160c739803"
	testSecret = "7ad3773142a6692b25b8"
)

// restRequest is one request as the fake REST server received it.
type restRequest struct {
	Method      string
	Path        string // escaped, as on the wire
	RawQuery    string
	Query       url.Values
	Body        []byte
	ContentType string
}

// fakeREST is an httptest server that authenticates every request with auth.VerifyRequest, as Herald
// does, answers 401 with the verifier's message on failure, and otherwise lets the test answer.
type fakeREST struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []restRequest
	conns  atomic.Int32 // TCP connections accepted
	answer func(restRequest) (status int, body string)
}

func newFakeREST(t *testing.T, answer func(restRequest) (int, string)) *fakeREST {
	t.Helper()
	f := &fakeREST{answer: answer}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeREST) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := restRequest{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Query: r.URL.Query(), Body: body, ContentType: r.Header.Get("Content-Type")}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	ar := auth.Request{Method: r.Method, Path: req.Path, RawQuery: req.RawQuery, Body: body}
	if err := auth.VerifyRequest(ar, testKey, testSecret, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	status, answer := http.StatusOK, "{}"
	if f.answer != nil {
		status, answer = f.answer(req)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// last returns the last request received.
func (f *fakeREST) last(t *testing.T) restRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("server received no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeREST) client(baseSuffix string) *REST {
	return NewREST(RESTConfig{BaseURL: f.srv.URL + baseSuffix, AppID: testAppID, Key: testKey, Secret: testSecret})
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// decodeBody decodes a JSON request body into a generic value for comparison.
func decodeBody(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("request body %q is not JSON: %v", b, err)
	}
	return v
}

func intPtr(n int) *int { return &n }

func TestRESTTrigger(t *testing.T) {
	f := newFakeREST(t, func(r restRequest) (int, string) {
		return 200, `{"channels":{"presence-a":{"user_count":2,"subscription_count":3},"b":{"subscription_count":1}}}`
	})
	ctx := testContext(t)
	resp, err := f.client("").Trigger(ctx, []string{"presence-a", "b"}, "created", `{"id":7}`,
		&TriggerOptions{SocketID: "123.456", Info: "user_count,subscription_count"})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	want := map[string]pusher.ChannelAttributes{
		"presence-a": {UserCount: intPtr(2), SubscriptionCount: intPtr(3)},
		"b":          {SubscriptionCount: intPtr(1)},
	}
	if !reflect.DeepEqual(resp.Channels, want) {
		t.Errorf("answer channels = %+v, want %+v", resp.Channels, want)
	}
	r := f.last(t)
	if r.Method != "POST" || r.Path != "/apps/1/events" || r.ContentType != "application/json" {
		t.Errorf("request = %s %s (%s), want POST /apps/1/events (application/json)", r.Method, r.Path, r.ContentType)
	}
	wantBody := map[string]any{"name": "created", "data": `{"id":7}`, "channels": []any{"presence-a", "b"},
		"socket_id": "123.456", "info": "user_count,subscription_count"}
	if got := decodeBody(t, r.Body); !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body = %v, want %v", got, wantBody)
	}
	if r.Query.Get("body_md5") == "" || r.Query.Get("auth_version") != "1.0" {
		t.Errorf("query %q lacks body_md5 or auth_version", r.RawQuery)
	}

	// Without options the optional fields stay out of the body and {} decodes to an empty answer.
	f.answer = nil
	resp, err = f.client("").Trigger(ctx, []string{"c"}, "e", "", nil)
	if err != nil {
		t.Fatalf("trigger without options: %v", err)
	}
	if resp.Channels != nil {
		t.Errorf("answer channels = %v, want none", resp.Channels)
	}
	wantBody = map[string]any{"name": "e", "data": "", "channels": []any{"c"}}
	if got := decodeBody(t, f.last(t).Body); !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body = %v, want %v", got, wantBody)
	}
}

func TestRESTTriggerBatch(t *testing.T) {
	f := newFakeREST(t, func(restRequest) (int, string) {
		return 200, `{"batch":[{"subscription_count":4},{}]}`
	})
	resp, err := f.client("").TriggerBatch(testContext(t), []BatchEvent{
		{Channel: "a", Name: "e1", Data: "d1", Info: "subscription_count"},
		{Channel: "private-b", Name: "e2", Data: `{"x":1}`, SocketID: "1.2"},
	})
	if err != nil {
		t.Fatalf("trigger batch: %v", err)
	}
	if len(resp.Batch) != 2 || resp.Batch[0].SubscriptionCount == nil || *resp.Batch[0].SubscriptionCount != 4 {
		t.Errorf("answer = %+v, want batch[0].subscription_count 4 of 2 entries", resp.Batch)
	}
	r := f.last(t)
	if r.Method != "POST" || r.Path != "/apps/1/batch_events" {
		t.Errorf("request = %s %s, want POST /apps/1/batch_events", r.Method, r.Path)
	}
	wantBody := map[string]any{"batch": []any{
		map[string]any{"name": "e1", "data": "d1", "channel": "a", "info": "subscription_count"},
		map[string]any{"name": "e2", "data": `{"x":1}`, "channel": "private-b", "socket_id": "1.2"},
	}}
	if got := decodeBody(t, r.Body); !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body = %v, want %v", got, wantBody)
	}
}

func TestRESTQueries(t *testing.T) {
	var answer string
	f := newFakeREST(t, func(restRequest) (int, string) { return 200, answer })
	rest := f.client("")
	ctx := testContext(t)

	t.Run("channels", func(t *testing.T) {
		answer = `{"channels":{"presence-a":{"user_count":3},"presence-b":{}}}`
		resp, err := rest.Channels(ctx, "presence-", "user_count,subscription_count")
		if err != nil {
			t.Fatalf("channels: %v", err)
		}
		if len(resp.Channels) != 2 || *resp.Channels["presence-a"].UserCount != 3 {
			t.Errorf("answer = %+v", resp.Channels)
		}
		r := f.last(t)
		if r.Method != "GET" || r.Path != "/apps/1/channels" || len(r.Body) != 0 || r.Query.Has("body_md5") {
			t.Errorf("request = %s %s body %q query %q, want GET /apps/1/channels without body", r.Method, r.Path, r.Body, r.RawQuery)
		}
		// The comma list reaches the server intact (escaped on the wire) and the signature covered it.
		if got := r.Query.Get("info"); got != "user_count,subscription_count" {
			t.Errorf("info = %q", got)
		}
		if got := r.Query.Get("filter_by_prefix"); got != "presence-" {
			t.Errorf("filter_by_prefix = %q", got)
		}
	})

	t.Run("channels without parameters", func(t *testing.T) {
		answer = `{"channels":{}}`
		resp, err := rest.Channels(ctx, "", "")
		if err != nil {
			t.Fatalf("channels: %v", err)
		}
		if resp.Channels == nil || len(resp.Channels) != 0 {
			t.Errorf("answer = %#v, want an empty map", resp.Channels)
		}
		if q := f.last(t).Query; q.Has("info") || q.Has("filter_by_prefix") {
			t.Errorf("query %v carries empty parameters", q)
		}
	})

	t.Run("channel", func(t *testing.T) {
		answer = `{"occupied":true,"subscription_count":2}`
		name := "private-a,b;c@d=e.f_g-h"
		resp, err := rest.Channel(ctx, name, "subscription_count")
		if err != nil {
			t.Fatalf("channel: %v", err)
		}
		if !resp.Occupied || resp.SubscriptionCount == nil || *resp.SubscriptionCount != 2 || resp.UserCount != nil {
			t.Errorf("answer = %+v", resp)
		}
		// Channel-name characters are all legal in a path segment: sent unescaped, as the SDKs do.
		if r := f.last(t); r.Path != "/apps/1/channels/"+name || r.Query.Get("info") != "subscription_count" {
			t.Errorf("request path %q query %q", r.Path, r.RawQuery)
		}
	})

	t.Run("server-to-user channel", func(t *testing.T) {
		answer = `{"occupied":false}`
		if _, err := rest.Channel(ctx, "#server-to-user-7", ""); err != nil {
			t.Fatalf("channel: %v", err)
		}
		if r := f.last(t); r.Path != "/apps/1/channels/%23server-to-user-7" {
			t.Errorf("path = %q, want the # escaped", r.Path)
		}
	})

	t.Run("users", func(t *testing.T) {
		answer = `{"users":[{"id":"1"},{"id":"42"}]}`
		resp, err := rest.Users(ctx, "presence-room")
		if err != nil {
			t.Fatalf("users: %v", err)
		}
		if want := []pusher.User{{ID: "1"}, {ID: "42"}}; !reflect.DeepEqual(resp.Users, want) {
			t.Errorf("users = %v, want %v", resp.Users, want)
		}
		if r := f.last(t); r.Method != "GET" || r.Path != "/apps/1/channels/presence-room/users" {
			t.Errorf("request = %s %s", r.Method, r.Path)
		}
	})

	t.Run("terminate", func(t *testing.T) {
		answer = `{}`
		if err := rest.TerminateUserConnections(ctx, "user 1/2"); err != nil {
			t.Fatalf("terminate: %v", err)
		}
		r := f.last(t)
		if r.Method != "POST" || r.Path != "/apps/1/users/user%201%2F2/terminate_connections" || string(r.Body) != "{}" {
			t.Errorf("request = %s %s body %q", r.Method, r.Path, r.Body)
		}
		if r.Query.Get("body_md5") != "99914b932bd37a50b983c5e7c90ae93b" {
			t.Errorf("body_md5 = %q, want the MD5 of {}", r.Query.Get("body_md5"))
		}
	})
}

func TestRESTPrefixedBaseURL(t *testing.T) {
	f := newFakeREST(t, func(restRequest) (int, string) { return 200, `{"channels":{}}` })
	// The trailing slash is tolerated; the request goes under the prefix and is signed without it.
	if _, err := f.client("/herald/").Channels(testContext(t), "", "user_count"); err != nil {
		t.Fatalf("channels under a prefix: %v", err)
	}
	if got := f.last(t).Path; got != "/herald/apps/1/channels" {
		t.Errorf("path = %q, want /herald/apps/1/channels", got)
	}
}

func TestRESTStatusError(t *testing.T) {
	f := newFakeREST(t, func(restRequest) (int, string) { return 400, `{"error":"Invalid channel name"}` })
	ctx := testContext(t)

	_, err := f.client("").Channel(ctx, "presence-x", "user_count")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 || se.Body != `{"error":"Invalid channel name"}` {
		t.Fatalf("err = %v, want a *StatusError 400 with the body", err)
	}

	// A wrong secret is refused by the verifier with 401 and its message.
	wrong := NewREST(RESTConfig{BaseURL: f.srv.URL, AppID: testAppID, Key: testKey, Secret: "not-the-secret"})
	_, err = wrong.Trigger(ctx, []string{"a"}, "e", "d", nil)
	if !errors.As(err, &se) || se.Status != 401 || !strings.Contains(se.Body, "Invalid signature") {
		t.Fatalf("err = %v, want a *StatusError 401 about the signature", err)
	}
	if err := wrong.TerminateUserConnections(ctx, "u"); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("terminate err = %v, want a *StatusError 401", err)
	}
}

func TestRESTClock(t *testing.T) {
	f := newFakeREST(t, nil)
	at := time.Now().Add(-601 * time.Second)
	rest := NewREST(RESTConfig{BaseURL: f.srv.URL, AppID: testAppID, Key: testKey, Secret: testSecret,
		Now: func() time.Time { return at }})
	_, err := rest.Channels(testContext(t), "", "")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 401 || !strings.Contains(se.Body, "Timestamp expired") {
		t.Fatalf("err = %v, want a 401 for the expired timestamp", err)
	}
	if got, want := f.last(t).Query.Get("auth_timestamp"), at.Unix(); got != strconv.FormatInt(want, 10) {
		t.Errorf("auth_timestamp = %s, want %d", got, want)
	}
}

func TestRESTDo(t *testing.T) {
	f := newFakeREST(t, func(r restRequest) (int, string) {
		if r.Path != "/apps/1/events" {
			return 404, "Not found"
		}
		return 413, "Data too large"
	})
	rest := f.client("")
	ctx := testContext(t)

	status, body, err := rest.Do(ctx, "POST", "/apps/1/events", url.Values{"x": {"a b,c"}}, []byte(`{"name":"e"}`))
	if err != nil || status != 413 || string(body) != "Data too large" {
		t.Fatalf("Do = %d %q %v, want 413 with the body", status, body, err)
	}
	if got := f.last(t).Query.Get("x"); got != "a b,c" {
		t.Errorf("x = %q", got)
	}
	status, body, err = rest.Do(ctx, "GET", "/apps/9/channels", nil, nil)
	if err != nil || status != 404 || string(body) != "Not found" {
		t.Fatalf("Do = %d %q %v, want 404", status, body, err)
	}
}

func TestRESTReusesConnections(t *testing.T) {
	f := newFakeREST(t, func(r restRequest) (int, string) {
		if r.Method == "GET" {
			return 200, `{"channels":{}}`
		}
		return 400, strings.Repeat("x", 10000) // error bodies are read to the end too
	})
	rest := f.client("")
	ctx := testContext(t)
	for i := 0; i < 5; i++ {
		if _, err := rest.Channels(ctx, "", ""); err != nil {
			t.Fatalf("channels: %v", err)
		}
		if _, err := rest.Trigger(ctx, []string{"a"}, "e", "d", nil); err == nil {
			t.Fatal("trigger: want an error")
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("10 sequential requests used %d connections, want 1", n)
	}
}

func TestEscapeSegment(t *testing.T) {
	for in, want := range map[string]string{
		"presence-a_b":      "presence-a_b",
		"a,b;c=d@e.f~g:h":   "a,b;c=d@e.f~g:h",
		"#server-to-user-7": "%23server-to-user-7",
		"a/b?c%d e":         "a%2Fb%3Fc%25d%20e",
		"é":                 "%C3%A9",
	} {
		if got := escapeSegment(in); got != want {
			t.Errorf("escapeSegment(%q) = %q, want %q", in, got, want)
		}
	}
}
