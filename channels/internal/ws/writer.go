package ws

import (
	"errors"
	"os"
	"sync"
	"time"
)

// Write sends frames in order, after anything unsent, in one socket write bounded by the write
// timeout. Writes are serialised: any goroutine may call it.
func (s *Socket) Write(frames ...Frame) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	buf := s.encode(frames...)
	defer putBuffer(&writeBuffers, buf)
	err := s.nc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if err == nil {
		_, err = s.nc.Write(*buf)
	}
	if err == nil { // a deadline left behind would fail the next TryWrite once it passed
		err = s.nc.SetWriteDeadline(time.Time{})
	}
	return err
}

// TryWrite writes f, after anything unsent, as far as the socket takes it without waiting. It
// reports complete when everything went; otherwise the rest is kept and goes first with the next
// Write, which the caller must then make from a goroutine that may wait. It saves a goroutine per
// write to a client that keeps up. Without a descriptor to write to directly, nothing is written and
// the frame waits for the next Write.
func (s *Socket) TryWrite(f Frame) (complete bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	buf := s.encode(f)
	defer putBuffer(&writeBuffers, buf)
	b := *buf
	n := 0
	if s.raw != nil {
		rerr := s.raw.Write(func(fd uintptr) bool {
			n, err = writeNow(fd, b)
			return true // never wait: what is left goes to a Write
		})
		if err == nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			err = rerr // a passed deadline only means: let a Write wait
		}
	}
	if err != nil {
		return false, err
	}
	if n < len(b) {
		s.unsent = append(s.unsent[:0:0], b[n:]...)
		return false, nil
	}
	return true, nil
}

// encode frames the unsent bytes and frames into a pooled buffer, which the caller gives back with
// putBuffer; the unsent bytes are then the caller's to write. wmu is held.
func (s *Socket) encode(frames ...Frame) *[]byte {
	buf := writeBuffers.Get().(*[]byte)
	*buf = append(*buf, s.unsent...)
	s.unsent = nil
	for _, f := range frames {
		*buf = AppendFrame(*buf, f.Op, f.Data)
	}
	return buf
}

// putBuffer empties buf and returns it to pool, unless one large message grew it past 64 KiB.
func putBuffer(pool *sync.Pool, buf *[]byte) {
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		pool.Put(buf)
	}
}
