package ws

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Poller watches the descriptors of parked sockets, so that an idle connection holds no goroutine:
// when a socket's reader finds nothing buffered it parks the socket here (one-shot) and returns; when
// bytes arrive, the poller calls the socket's onReadable. The epoll descriptor is itself watched by
// Go's network poller, so waiting costs no thread.
type Poller struct {
	epfd   int
	file   *os.File // keeps epfd open and lets the runtime poll it
	closed atomic.Bool
	done   chan struct{}

	mu sync.Mutex
	// parked holds the parked sockets by descriptor: descriptors are small integers the kernel hands
	// out densely, so a slice costs a pointer per descriptor where a map would cost several.
	parked []*Socket
	count  int
}

// NewPoller starts a poller. Where the platform has none it returns nil and no error: sockets then
// wait in their reads.
func NewPoller() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	p := &Poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "herald-poller"), done: make(chan struct{})}
	go p.run()
	return p, nil
}

// Close stops the poller; sockets still parked stay parked until they are closed. It is idempotent.
func (p *Poller) Close() error {
	if p == nil || p.closed.Swap(true) {
		return nil
	}
	err := p.file.Close()
	<-p.done
	return err
}

// watch registers s (one-shot), re-arming the registration of an earlier park when added, and reports
// whether it could. The registration is made while the descriptor is held open: were it closed and
// its number reused meanwhile, the entry and the registration would belong to another socket.
func (p *Poller) watch(s *Socket, added bool) bool {
	if p.closed.Load() {
		return false
	}
	var err error
	held := s.raw.Control(func(fd uintptr) {
		p.mu.Lock()
		if int(fd) >= len(p.parked) {
			p.parked = append(p.parked, make([]*Socket, int(fd)+1-len(p.parked))...)
		}
		if p.parked[fd] == nil {
			p.count++
		}
		p.parked[fd] = s
		p.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		op, other := syscall.EPOLL_CTL_ADD, syscall.EPOLL_CTL_MOD
		if added {
			op, other = other, op
		}
		if err = syscall.EpollCtl(p.epfd, op, int(fd), &ev); err == syscall.ENOENT || err == syscall.EEXIST {
			err = syscall.EpollCtl(p.epfd, other, int(fd), &ev)
		}
	})
	return held == nil && err == nil
}

// forget drops s's entry; its one-shot registration has fired or never will matter again.
func (p *Poller) forget(s *Socket) {
	p.mu.Lock()
	if int(s.fd) < len(p.parked) && p.parked[s.fd] == s {
		p.parked[s.fd] = nil
		p.count--
	}
	p.mu.Unlock()
}

// Parked returns the number of parked sockets.
func (p *Poller) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// run wakes each ready socket. It waits through the runtime poller; should that refuse the
// descriptor, it waits in epoll_wait on a thread of its own instead, a second at a time so that Close
// is noticed.
func (p *Poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	rc, err := p.file.SyscallConn()
	if err == nil {
		// The runtime calls back when the epoll descriptor becomes readable; a wait that returns
		// fewer events than fit has drained it, so the next event makes it readable again and the
		// callback goes back to waiting without a second, empty epoll_wait.
		_ = rc.Read(func(fd uintptr) bool {
			for {
				n, _ := syscall.EpollWait(int(fd), events, 0)
				p.wake(events[:max(n, 0)])
				if n < len(events) {
					return p.closed.Load()
				}
			}
		})
		return
	}
	for !p.closed.Load() {
		n, err := syscall.EpollWait(p.epfd, events, int(time.Second/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			return
		}
		p.wake(events[:max(n, 0)])
	}
}

func (p *Poller) wake(events []syscall.EpollEvent) {
	for _, ev := range events {
		p.mu.Lock()
		var s *Socket
		if int(ev.Fd) < len(p.parked) {
			s = p.parked[ev.Fd]
		}
		p.mu.Unlock()
		if s != nil {
			s.wake()
		}
	}
}
