package ws

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Socket is one client's WebSocket after the handshake.
//
// One goroutine at a time reads (Next, ParkIfIdle: the connection's reader of the moment). Writes
// (Write, TryWrite) are serialised by wmu and each is a single socket write; Close may be called from
// any goroutine, at any time, more than once.
type Socket struct {
	// Static after Accept.
	nc           net.Conn
	raw          syscall.RawConn // for writes that must not wait and for the poller; nil without a descriptor
	fd           int32           // the descriptor's number, the poller's key for the socket; -1 without one
	watched      bool            // registered with the poller by an earlier park; owned by the reader
	writeTimeout time.Duration
	poller       *Poller // nil: the socket never parks

	// Read state, owned by the reader.
	rbuf *[]byte  // pooled; nil while nothing is buffered
	r, w int32    // unread bytes are (*rbuf)[r:w]
	msg  *[]byte  // the data message being assembled; pooled
	frag fragment // the data message in progress, across control frames

	// unsent holds framed bytes not yet written, guarded by wmu: the handshake answer until the first
	// write, or what a TryWrite could not write without waiting. Every write sends it first.
	wmu    sync.Mutex
	unsent []byte

	closed atomic.Bool
	// parked is set while the poller watches the socket; onReadable is what it then calls, set
	// before parked and read only by whoever clears parked.
	parked     atomic.Bool
	onReadable func()
}

// Options configure the sockets Accept returns. Every zero value means the documented default.
type Options struct {
	// WriteTimeout bounds one Write. Zero: 10 s.
	WriteTimeout time.Duration
	// Subprotocols the server speaks, in its order of preference; the first one the client offers
	// is selected. None: no subprotocol is ever selected.
	Subprotocols []string
	// Poller parks idle sockets (see ParkIfIdle). Nil: sockets wait in their reads.
	Poller *Poller
}

const readBufferSize = 4096 // pooled; held only while a socket has bytes to read

var (
	readBuffers    = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}
	messageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	writeBuffers   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func newSocket(nc net.Conn, pending, answer []byte, o Options) *Socket {
	s := &Socket{nc: nc, writeTimeout: o.WriteTimeout, poller: o.Poller, unsent: answer}
	if s.writeTimeout <= 0 {
		s.writeTimeout = 10 * time.Second
	}
	s.raw, s.fd = rawConn(nc)
	if len(pending) > 0 {
		s.takeBuffer()
		s.w = int32(copy(*s.rbuf, pending))
	}
	return s
}

// rawConn returns the raw connection and descriptor of a TCP or Unix socket, or nil and -1 for
// anything else (TLS, pipes).
func rawConn(nc net.Conn) (syscall.RawConn, int32) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, -1
	}
	fd := int32(-1)
	if rc.Control(func(f uintptr) { fd = int32(f) }) != nil {
		return nil, -1
	}
	return rc, fd
}

// NetConn returns the underlying connection, for its addresses.
func (s *Socket) NetConn() net.Conn { return s.nc }

// ParkIfIdle hands the socket to the poller when nothing is buffered, and reports whether it did:
// then the caller must stop reading, since onReadable starts a new reader as soon as bytes arrive or
// the socket is closed (onReadable must not block). Idle, the socket keeps no read buffer. It
// reports false when bytes are buffered, or the socket cannot be parked (no poller, no descriptor),
// or it was closed meanwhile: the caller then reads on, and learns of a close from Next.
func (s *Socket) ParkIfIdle(onReadable func()) bool {
	if s.w > s.r {
		return false
	}
	s.release()
	if s.poller == nil || s.raw == nil {
		return false
	}
	// Written before parked is set, which is what orders them before whoever wakes the socket.
	added := s.watched
	s.watched, s.onReadable = true, onReadable
	s.parked.Store(true)
	if !s.poller.watch(s, added) || s.closed.Load() {
		// A close between the last read and here must not strand the socket: Close sets closed
		// before it unparks, so either it finds the socket parked or this finds it closed.
		return !s.unpark()
	}
	return true
}

// unpark takes the socket off the poller and reports whether the caller now owns its reader.
func (s *Socket) unpark() bool {
	if !s.parked.CompareAndSwap(true, false) {
		return false
	}
	s.poller.forget(s)
	return true
}

// wake is the poller's: bytes arrived (or the peer went) on a parked socket.
func (s *Socket) wake() {
	if s.unpark() {
		s.onReadable()
	}
}

// release returns the read buffers to their pools when nothing is buffered: what an idle socket keeps
// is its struct, not 5 KiB of buffers.
func (s *Socket) release() {
	if s.rbuf != nil && s.r == s.w {
		readBuffers.Put(s.rbuf)
		s.rbuf, s.r, s.w = nil, 0, 0
	}
	if s.msg != nil && s.frag.op == 0 { // keep a fragmented message's first part
		putBuffer(&messageBuffers, s.msg)
		s.msg = nil
	}
}

// Close closes the socket at once; it is idempotent. A parked socket is woken, so that its reader
// runs, finds it closed and ends the connection.
func (s *Socket) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.nc.Close()
	if s.poller != nil && s.unpark() {
		s.onReadable()
	}
	return err
}

// LingerClose ends a socket whose reader has stopped: it sends FIN after what was written and
// discards what the client still sends until it closes too or grace passes. Closing at once with
// unread input would reset the connection, and the client could lose the close frame just written.
func (s *Socket) LingerClose(grace time.Duration) {
	if cw, ok := s.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil &&
		s.nc.SetReadDeadline(time.Now().Add(grace)) == nil {
		buf := readBuffers.Get().(*[]byte)
		for {
			if _, err := s.nc.Read(*buf); err != nil {
				break
			}
		}
		readBuffers.Put(buf)
	}
	_ = s.Close()
}

// CloseAfter writes frames (typically an error and a close frame), waits up to grace for the client's
// close reply, discarding anything else it sends, then closes. It is for sockets refused before any
// reader started.
func (s *Socket) CloseAfter(frames []Frame, grace time.Duration) {
	defer s.Close()
	if s.Write(frames...) != nil || s.nc.SetReadDeadline(time.Now().Add(grace)) != nil {
		return
	}
	for {
		m, err := s.Next(MaxControlPayload, MaxControlPayload)
		if err != nil || m.Op == OpClose {
			s.release()
			return
		}
	}
}
