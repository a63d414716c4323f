package channels

import (
	"os"
	"sync"
	"syscall"
)

// poller watches the sockets of idle connections, so that an idle connection holds no goroutine: when
// its reader finds nothing buffered it registers the socket here (one-shot) and returns; when bytes
// arrive, the poller starts a reader again. The epoll descriptor is itself watched by Go's network
// poller, so waiting costs no thread.
type poller struct {
	epfd int
	file *os.File // keeps epfd open and lets the runtime poll it

	mu     sync.Mutex
	parked map[int32]*Conn
}

var (
	pollerOnce sync.Once
	shared     *poller
)

// thePoller is shared by every server in the process, like the runtime's own poller; nil when epoll is
// unavailable, and connections then wait in their reads.
func thePoller() *poller {
	pollerOnce.Do(func() {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(epfd, true); err != nil {
			_ = syscall.Close(epfd)
			return
		}
		shared = &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "herald-poller"), parked: make(map[int32]*Conn)}
		go shared.run()
	})
	return shared
}

// park registers c's socket and reports true, after which the caller must return: another goroutine
// may be reading already. It reports false when the socket cannot be parked or was closed meanwhile;
// the caller then reads on (and learns of the close from the read).
func park(c *Conn) bool {
	p := thePoller()
	if p == nil {
		return false
	}
	c.parked.Store(true)
	var err error
	// Registered while the descriptor is held open: were it closed and its number reused meanwhile,
	// the entry and the registration would belong to another connection.
	held := c.ws.watch(func(fd int) {
		p.mu.Lock()
		p.parked[int32(fd)] = c
		p.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
		if err == syscall.ENOENT { // first park of this socket
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
		}
	})
	// A close between the reader's last read and here must not strand the connection: hangUp closes
	// before it unparks, so either it sees parked or this sees the socket closed.
	if !held || err != nil || c.ws.isClosed() {
		return !unpark(c)
	}
	return true
}

// unpark takes c off the poller and reports whether the caller now owns its reader.
func unpark(c *Conn) bool {
	if !c.parked.CompareAndSwap(true, false) {
		return false
	}
	if p := thePoller(); p != nil {
		fd := int32(c.ws.pollFD())
		p.mu.Lock()
		if p.parked[fd] == c {
			delete(p.parked, fd)
		}
		p.mu.Unlock()
	}
	return true
}

// run hands each ready socket back to its connection's reader. It waits through the runtime poller;
// should that refuse the descriptor, it blocks in epoll_wait on a thread of its own instead.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	rc, err := p.file.SyscallConn()
	for err == nil {
		err = rc.Read(func(fd uintptr) bool {
			n, _ := syscall.EpollWait(int(fd), events, 0)
			p.wake(events[:max(n, 0)])
			return n > 0
		})
	}
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil && err != syscall.EINTR {
			return
		}
		p.wake(events[:max(n, 0)])
	}
}

func (p *poller) wake(events []syscall.EpollEvent) {
	for _, ev := range events {
		p.mu.Lock()
		c := p.parked[ev.Fd]
		p.mu.Unlock()
		if c != nil && unpark(c) {
			startReader(c)
		}
	}
}

// parkingSupported reports whether idle connections can park here.
func parkingSupported() bool { return thePoller() != nil }
