package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawRequest sends head over a new connection to addr and returns the status line of the answer,
// or "" and the read error if the connection ended without one. The head is written concurrently: a
// server that answers before reading it all stops reading, and the write may never finish.
func rawRequest(t *testing.T, addr, head string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.WriteString(c, head) }()
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// headOf returns a complete GET /up request head of exactly n bytes.
func headOf(n int) string {
	const start, end = "GET /up HTTP/1.1\r\nHost: herald\r\nX-Pad: ", "\r\n\r\n"
	return start + strings.Repeat("a", n-len(start)-len(end)) + end
}

// TestHeaderLimits: a request head up to max_header_bytes (and the 4 KiB net/http reads ahead) is
// served, one byte more is answered 431, and a head still unfinished after read_header_timeout is
// closed unanswered.
func TestHeaderLimits(t *testing.T) {
	const limit = 4096
	addrs, exit := startRun(t, []string{"--addr", "127.0.0.1:0", "--max-header-bytes", "4096", "--read-header-timeout", "0.2"}, nil)
	addr := addrs[listening]
	for _, tt := range []struct {
		size int
		want string
	}{
		{limit, "HTTP/1.1 200 OK"},
		{limit + 4096, "HTTP/1.1 200 OK"},
		{limit + 4096 + 1, "HTTP/1.1 431 Request Header Fields Too Large"},
		{1 << 20, "HTTP/1.1 431 Request Header Fields Too Large"},
	} {
		if got, err := rawRequest(t, addr, headOf(tt.size)); got != tt.want {
			t.Errorf("%d-byte head: %q (%v), want %q", tt.size, got, err, tt.want)
		}
	}
	got, err := rawRequest(t, addr, "GET /up HTTP/1.1\r\nHost: herald\r\n")
	var ne net.Error
	if got != "" || !errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("unfinished head: %q, %v; want the connection closed unanswered", got, err)
	}
	sigterm(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	expectExit(ctx, t, exit)
}
