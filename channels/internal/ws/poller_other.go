//go:build !linux

package ws

// Poller is unavailable without epoll: sockets wait in their reads.
type Poller struct{}

// NewPoller returns nil: there is no poller here.
func NewPoller() (*Poller, error) { return nil, nil }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Parked returns 0.
func (p *Poller) Parked() int { return 0 }

func (p *Poller) watch(*Socket, bool) bool { return false }

func (p *Poller) forget(*Socket) {}
