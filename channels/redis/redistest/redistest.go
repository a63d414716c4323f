// Package redistest runs a real redis-server for tests: on a free loopback port, without
// persistence, so that a restart loses everything as a crashed or failed-over Redis does. Tests never
// use the machine's own Redis.
package redistest

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is a redis-server a test owns; it can be killed and started again on its port.
type Server struct {
	Port int
	cmd  *exec.Cmd
}

// Start starts a redis-server on a free loopback port; it is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("this test needs redis-server (Debian: apt-get install redis-server; .ci/run installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Server{Port: l.Addr().(*net.TCPAddr).Port}
	_ = l.Close()
	r.Restart(t)
	t.Cleanup(r.Kill)
	return r
}

// Addr is host:port.
func (r *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of the server.
func (r *Server) URL() string { return "redis://" + r.Addr() }

// Restart starts redis-server (again, empty, after Kill) and returns once it answers PING.
func (r *Server) Restart(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.ping() {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer PING within 10 s")
		}
		time.Sleep(20 * time.Millisecond) // polling a starting process, with a deadline
	}
}

func (r *Server) ping() bool {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// Kill ends redis-server with SIGKILL: nothing is saved.
func (r *Server) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
