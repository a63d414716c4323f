package channels

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/pusher"
)

// restTestApp is the one app of the REST tests in this package.
var restTestApp = pusher.App{ID: "rest-1", Key: "rest-key", Secret: "rest-secret", Enabled: true}

// newRESTServer returns a server for restTestApp.
func newRESTServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Apps: []pusher.App{restTestApp}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawPost sends a POST head and the start of a body to url's host over a new connection, and returns
// the status line of the answer ("" if the connection ended without one). The body goes out
// concurrently: a server answering early stops reading.
func rawPost(t *testing.T, url, path string, contentLength int64, body string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	head := "POST " + path + " HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.FormatInt(contentLength, 10) + "\r\n\r\n"
	go func() { _, _ = io.WriteString(c, head+body) }()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestRESTBodyOverTheLimitIsRefusedUnread: a Content-Length over the app's body bound is answered
// 413 at once, without waiting for a body; at the bound the body is read (and, unsigned, refused 401).
func TestRESTBodyOverTheLimitIsRefusedUnread(t *testing.T) {
	s := newRESTServer(t)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	path := "/apps/" + restTestApp.ID + "/events"
	limit := maxRESTBody(s.apps.Load().byID[restTestApp.ID].Limits)
	if got := rawPost(t, hs.URL, path, 999999999999, ""); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("Content-Length 999999999999: %q, want 413 without the body", got)
	}
	if got := rawPost(t, hs.URL, path, limit+1, ""); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("Content-Length limit+1: %q, want 413 without the body", got)
	}
	if got := rawPost(t, hs.URL, path, limit, strings.Repeat("x", int(limit))); got != "HTTP/1.1 401 Unauthorized" {
		t.Errorf("Content-Length at the limit: %q, want the body read and refused 401", got)
	}
}

// TestRESTTrickledBodyGets408: a body that stops arriving is answered 408 when the read deadline
// passes, before the write deadline closes the connection.
func TestRESTTrickledBodyGets408(t *testing.T) {
	if restReadDeadline >= restWriteDeadline {
		t.Fatalf("read deadline %v not before write deadline %v: a slow body would get no answer", restReadDeadline, restWriteDeadline)
	}
	s := newRESTServer(t)
	r := chi.NewRouter()
	r.Route("/apps/{appID}", func(r chi.Router) {
		r.Use(boundRequest(50*time.Millisecond, 5*time.Second))
		r.Use(s.authenticate)
		r.Post("/events", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, struct{}{}) })
	})
	hs := httptest.NewServer(r)
	defer hs.Close()
	if got := rawPost(t, hs.URL, "/apps/"+restTestApp.ID+"/events", 1000, `{"name":"e"`); got != "HTTP/1.1 408 Request Timeout" {
		t.Errorf("trickled body: %q, want 408", got)
	}
}
