//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/clients"
	"github.com/herald-rt/herald/pusher"
)

// The open-files tests run herald in a child process (this test binary again, running
// TestHeraldChild), whose file limit they lower without touching their own.
const (
	childLimitVar = "HERALDTEST_NOFILE" // the child's soft open-files limit
	childArgsVar  = "HERALDTEST_ARGS"   // its flags, space-separated
)

// TestHeraldChild is herald itself when run as such a child; otherwise it does nothing.
func TestHeraldChild(t *testing.T) {
	limit, err := strconv.ParseUint(os.Getenv(childLimitVar), 10, 64)
	if err != nil {
		t.Skip("runs only as the child of the open-files tests")
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	l.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	os.Exit(run(strings.Fields(os.Getenv(childArgsVar)), os.LookupEnv, os.Stderr))
}

// child is a herald process started by startChild.
type child struct {
	cmd    *exec.Cmd
	addr   string
	lines  chan string   // every log line, from the start, closed at exit
	exited chan struct{} // closed once the log is read and the process reaped
	err    error         // what cmd.Wait returned; read only after exited is closed
}

// startChild runs herald with an open-files limit of limit and the given flags, and reads its log up
// to the "herald listening" line. The child is killed if the test ends before it exits.
func startChild(t *testing.T, limit int, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeraldChild$")
	cmd.Env = append(os.Environ(), childLimitVar+"="+strconv.Itoa(limit), childArgsVar+"="+strings.Join(args, " "))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1000), exited: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range c.lines { // whoever else reads the log may have stopped
		}
		<-c.exited
	})
	addr := make(chan string, 1)
	go func() { // the only goroutine that reaps the child: cmd.Wait must follow the last read of stderr
		defer close(c.exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var entry struct{ Message, Addr string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Message == listening {
				addr <- entry.Addr
			}
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
	}()
	timeout := time.After(20 * time.Second)
	var early []string // what the child wrote before listening, shown if it never does
	for {
		select {
		case c.addr = <-addr:
			for _, l := range early { // put back what was read, so c.lines holds every line
				c.lines <- l
			}
			return c
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("the child exited before listening: %s", strings.Join(early, "\n"))
			}
			early = append(early, l)
		case <-timeout:
			t.Fatalf("the child never logged that it was listening: %s", strings.Join(early, "\n"))
		}
	}
}

// stop sends SIGTERM and returns every log line the child wrote; it fails the test unless the child
// exits 0.
func (c *child) stop(t *testing.T) []string {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var lines []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if ok {
				lines = append(lines, l)
				continue
			}
			<-c.exited
			if c.err != nil {
				t.Errorf("herald exited with %v", c.err)
			}
			return lines
		case <-timeout:
			t.Fatal("herald did not exit after SIGTERM")
		}
	}
}

// TestConnectionCapFromOpenFilesLimit: with no max_connections, a herald limited to 64 open files
// caps itself at 32 connections and says so; the next upgrade is refused with 4100, while /up and
// the REST API keep answering.
func TestConnectionCapFromOpenFilesLimit(t *testing.T) {
	c := startChild(t, 64, "--addr", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const capacity = 32 // connectionsWithin(64)
	for range capacity {
		conn, err := clients.Dial(ctx, "ws://"+c.addr+"/app/"+defaultAppKey, nil)
		if err != nil {
			t.Fatalf("connection under the cap: %v", err)
		}
		defer conn.Close()
	}
	_, err := clients.Dial(ctx, "ws://"+c.addr+"/app/"+defaultAppKey, nil)
	var de *clients.DialError
	if !errors.As(err, &de) || de.Code != pusher.CodeOverCapacity || de.CloseCode != pusher.CodeOverCapacity {
		t.Errorf("connection over the cap: %v, want a 4100 refusal", err)
	}
	resp, err := http.Get("http://" + c.addr + "/up")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/up at the cap = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	rest := clients.NewREST(clients.RESTConfig{BaseURL: "http://" + c.addr, AppID: defaultAppID, Key: defaultAppKey, Secret: defaultAppSecret})
	if _, err := rest.Trigger(ctx, []string{"room"}, "ping", "{}", nil); err != nil {
		t.Errorf("REST at the cap: %v", err)
	}
	derived := false
	for _, l := range c.stop(t) {
		var entry struct {
			Message        string
			MaxConnections int    `json:"max_connections"`
			OpenFilesLimit uint64 `json:"open_files_limit"`
		}
		if json.Unmarshal([]byte(l), &entry) == nil && strings.HasPrefix(entry.Message, "max_connections derived") {
			derived = entry.MaxConnections == capacity && entry.OpenFilesLimit == 64
		}
	}
	if !derived {
		t.Error("no log line with the derived max_connections of 32 and the open-files limit of 64")
	}
}

// TestAcceptErrorsAreLoggedAsJSON: a herald told to take any number of connections runs out of
// files; net/http's accept errors then reach the log as JSON, like every other line, and herald
// serves again once connections close.
func TestAcceptErrorsAreLoggedAsJSON(t *testing.T) {
	c := startChild(t, 48, "--addr", "127.0.0.1:0", "--max-connections", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conns []*clients.Conn
	for range 48 { // more than the child can hold
		dialCtx, cancelDial := context.WithTimeout(ctx, 2*time.Second)
		conn, err := clients.Dial(dialCtx, "ws://"+c.addr+"/app/"+defaultAppKey, nil)
		cancelDial()
		if err != nil {
			break
		}
		conns = append(conns, conn)
	}
	if len(conns) == 48 {
		t.Fatal("the child never ran out of files")
	}
	var lines []string
	for !strings.Contains(strings.Join(lines, "\n"), "too many open files") {
		select {
		case l := <-c.lines:
			lines = append(lines, l)
		case <-ctx.Done():
			t.Fatalf("no accept error logged; log so far:\n%s", strings.Join(lines, "\n"))
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + c.addr + "/up")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/up after the connections closed = %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	for _, l := range append(lines, c.stop(t)...) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Errorf("log line is not JSON: %q", l)
		}
		if msg, _ := entry["message"].(string); strings.HasPrefix(msg, "max_connections derived") {
			t.Errorf("an explicit max_connections was overridden: %s", l)
		}
	}
}
