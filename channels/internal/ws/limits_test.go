package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTextMessagesMustBeUTF8 (RFC 6455 §8.1): a text message that is not UTF-8 ends the connection
// with 1007, also when the bad bytes are split across fragments; a rune split across fragments is
// fine.
func TestTextMessagesMustBeUTF8(t *testing.T) {
	e := []byte("é") // two bytes
	split := append(clientFrame(false, OpText, append([]byte("a"), e[0])), clientFrame(true, OpContinuation, append([]byte{e[1]}, 'b'))...)
	if m, err := socketOver(split, 0).Next(1024, 4096); err != nil || string(m.Data) != "aéb" {
		t.Fatalf("a rune split across fragments: %q, %v", m.Data, err)
	}
	for name, stream := range map[string][]byte{
		"one frame":      clientFrame(true, OpText, []byte("bad \xff")),
		"fragments":      append(clientFrame(false, OpText, []byte("ok")), clientFrame(true, OpContinuation, []byte{0xC3})...),
		"overlong":       clientFrame(true, OpText, []byte{0xC0, 0xAF}),
		"lone surrogate": clientFrame(true, OpText, []byte{0xED, 0xA0, 0x80}),
	} {
		var pe *ProtocolError
		if _, err := socketOver(stream, 0).Next(1024, 4096); !errors.As(err, &pe) || pe.Code != CloseInvalidPayload {
			t.Errorf("%s: %v, want close 1007", name, err)
		}
	}
	// Binary messages carry any bytes.
	if m, err := socketOver(clientFrame(true, OpBinary, []byte{0xFF}), 0).Next(1024, 4096); err != nil || m.Op != OpBinary {
		t.Errorf("binary message: %v, %v", m.Op, err)
	}
}

func TestCloseReasonMustBeUTF8(t *testing.T) {
	var pe *ProtocolError
	if _, err := ParseClose(append(binary.BigEndian.AppendUint16(nil, 1000), 0xFF)); !errors.As(err, &pe) || pe.Code != CloseInvalidPayload {
		t.Errorf("a close reason that is not UTF-8: %v, want 1007", err)
	}
	if code, err := ParseClose(append(binary.BigEndian.AppendUint16(nil, 4000), "déjà"...)); code != 4000 || err != nil {
		t.Errorf("a UTF-8 close reason: %d, %v", code, err)
	}
}

// trickleConn gives its reader what it holds, then blocks until closed, as a client that declared a
// frame and sent one byte of it would.
type trickleConn struct {
	net.Conn
	data    []byte
	drained chan struct{} // closed when the reader has had all of data and waits for more
	closed  chan struct{}
	once    sync.Once
}

func (c *trickleConn) Read(p []byte) (int, error) {
	if len(c.data) > 0 {
		n := copy(p, c.data)
		c.data = c.data[n:]
		return n, nil
	}
	close(c.drained)
	<-c.closed
	return 0, net.ErrClosed
}

func (c *trickleConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// TestDeclaredLengthCostsNothing: a header declaring a frame of the largest allowed size costs the
// bytes that arrived, not the bytes declared. Before, 3,000 connections declaring 64 KiB and sending a
// byte each held 210 MB.
func TestDeclaredLengthCostsNothing(t *testing.T) {
	const sockets, declared = 500, 64 << 10
	header := binary.BigEndian.AppendUint64([]byte{0x80 | OpText, 0x80 | 127}, declared)
	header = append(header, 1, 2, 3, 4, 'x')
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]*trickleConn, sockets)
	var started, finished sync.WaitGroup
	for i := range conns {
		conns[i] = &trickleConn{data: bytes.Clone(header), drained: make(chan struct{}), closed: make(chan struct{})}
		s := newSocket(conns[i], nil, nil, Options{})
		started.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			started.Done()
			_, _ = s.Next(declared, 16*declared)
		}()
	}
	started.Wait()
	for _, c := range conns { // every reader now waits for the rest of its frame
		select {
		case <-c.drained:
		case <-time.After(10 * time.Second):
			t.Fatal("a reader never asked for more than the header and a byte")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, c := range conns {
		_ = c.Close()
	}
	finished.Wait()
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > sockets*16<<10 {
		t.Errorf("%d sockets each declaring %d bytes and sending 1 hold %d KiB of heap (%d B each), want the bytes received",
			sockets, declared, grown>>10, grown/sockets)
	}
}

// TestLargeMessagesStillArrive: growing with what arrives reassembles large messages intact, through
// the buffer and straight from the network.
func TestLargeMessagesStillArrive(t *testing.T) {
	big := []byte(strings.Repeat("0123456789abcdef", 40000)) // 640,000 bytes
	stream := append(clientFrame(false, OpText, big[:300000]), clientFrame(true, OpContinuation, big[300000:])...)
	for _, chunk := range []int{0, 4095, 100000} {
		m, err := socketOver(stream, chunk).Next(1<<20, 1<<21)
		if err != nil || !bytes.Equal(m.Data, big) {
			t.Fatalf("chunk %d: %d bytes, %v", chunk, len(m.Data), err)
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

// TestParkWakesOnBytesAndOnClose: a parked socket's callback runs when bytes arrive and when the
// socket is closed, and the poller holds no entry for a socket that is no longer parked.
func TestParkWakesOnBytesAndOnClose(t *testing.T) {
	p, err := NewPoller()
	if err != nil || p == nil {
		t.Skip("no poller on this platform")
	}
	defer p.Close()
	sc, cc := tcpPair(t)
	s := newSocket(sc, nil, nil, Options{Poller: p})
	woken := make(chan struct{}, 1)
	wake := func() { woken <- struct{}{} }
	await := func(what string) {
		t.Helper()
		select {
		case <-woken:
		case <-time.After(5 * time.Second):
			t.Fatalf("not woken by %s", what)
		}
	}
	if !s.ParkIfIdle(wake) || p.Parked() != 1 {
		t.Fatalf("an idle socket did not park (%d parked)", p.Parked())
	}
	if _, err := cc.Write(clientFrame(true, OpText, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	await("bytes")
	if m, err := s.Next(1024, 4096); err != nil || string(m.Data) != "hi" || p.Parked() != 0 {
		t.Fatalf("after waking: %q, %v, %d parked", m.Data, err, p.Parked())
	}
	if !s.ParkIfIdle(wake) {
		t.Fatal("did not park again")
	}
	_ = s.Close()
	await("Close")
	if p.Parked() != 0 || s.ParkIfIdle(wake) {
		t.Errorf("a closed socket stays parked (%d) or parks again", p.Parked())
	}
}

// TestTryWriteKeepsTheRest: what a non-blocking write cannot hand the kernel goes first with the next
// Write, so the client reads every byte in order.
func TestTryWriteKeepsTheRest(t *testing.T) {
	sc, cc := tcpPair(t)
	s := newSocket(sc, nil, []byte("HELLO"), Options{})
	big := bytes.Repeat([]byte("z"), 32<<20) // far more than the kernel buffers while nobody reads
	complete, err := s.TryWrite(Frame{Op: OpBinary, Data: big})
	if err != nil || complete {
		t.Fatalf("TryWrite of 32 MiB to a client not reading: complete %v, %v", complete, err)
	}
	want := append([]byte("HELLO"), AppendFrame(nil, OpBinary, big)...)
	want = AppendFrame(want, OpText, []byte("after"))
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cc, int64(len(want))))
		got <- b
	}()
	if err := s.Write(Frame{Op: OpText, Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("client read %d bytes, want %d in order", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not read everything")
	}
}
