package channels

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/herald-rt/herald/pusher"
)

const connShards = 32

// connRegistry indexes this node's live connections by socket id: it keeps ids unique, counts
// connections per app and server-wide for the quotas, and lets shutdown reach every socket (hijacked
// connections are invisible to http.Server.Shutdown).
type connRegistry struct {
	seed  maphash.Seed
	total atomic.Int64 // registered: what the quotas count
	// live counts connections from registration to cleanup: unlike total it still counts a
	// connection in its close handshake, whose channels and members are not yet left.
	live   atomic.Int64
	shards [connShards]struct {
		mu    sync.Mutex
		conns map[string]*Conn
	}
}

func newConnRegistry() *connRegistry {
	r := &connRegistry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].conns = make(map[string]*Conn)
	}
	return r
}

// register gives c a socket id unique on this node and counts it against its app's quota and the
// server's capacity; it returns the error to close with when either is exhausted.
func (r *connRegistry) register(c *Conn, maxTotal int) *pusher.Error {
	if n := r.total.Add(1); maxTotal > 0 && n > int64(maxTotal) {
		r.total.Add(-1)
		return pusher.CloseError(pusher.CodeOverCapacity, "Over capacity")
	}
	if max := c.app.MaxConnections; max > 0 {
		if n := c.app.conns.Add(1); n > int64(max) {
			c.app.conns.Add(-1)
			r.total.Add(-1)
			return pusher.CloseError(pusher.CodeOverQuota, "Application is over connection quota")
		}
	} else {
		c.app.conns.Add(1)
	}
	for {
		id := pusher.NewSocketID()
		s := &r.shards[maphash.String(r.seed, id)%connShards]
		s.mu.Lock()
		if _, taken := s.conns[id]; !taken {
			c.id = id
			s.conns[id] = c
			s.mu.Unlock()
			c.registered.Store(true)
			r.live.Add(1)
			return nil
		}
		s.mu.Unlock()
	}
}

// unregister undoes register; Conn.unregister makes sure it runs once.
func (r *connRegistry) unregister(c *Conn) {
	s := &r.shards[maphash.String(r.seed, c.id)%connShards]
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	c.app.conns.Add(-1)
	r.total.Add(-1)
}

// each calls fn for every registered connection, a shard at a time, with no lock held: batch is the
// caller's buffer, reused between calls.
func (r *connRegistry) each(batch *[]*Conn, fn func(*Conn)) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, c := range s.conns {
			*batch = append(*batch, c)
		}
		s.mu.Unlock()
		for _, c := range *batch {
			fn(c)
		}
		clear(*batch)
		*batch = (*batch)[:0]
	}
}

// snapshot returns every live connection, for shutdown.
func (r *connRegistry) snapshot() []*Conn {
	all := make([]*Conn, 0, r.total.Load())
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, c := range s.conns {
			all = append(all, c)
		}
		s.mu.Unlock()
	}
	return all
}
