package channels

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/herald-rt/herald/pusher"
)

// Quota counts an app's connections on every node, for apps with a MaxConnections: one node's own
// count cannot enforce a cluster-wide limit. Only such apps pay its round trips.
type Quota interface {
	// Admit counts one more connection of the app if fewer than max are open cluster-wide, and reports
	// whether it did.
	Admit(ctx context.Context, appID string, max int) (bool, error)
	// Release uncounts a connection Admit counted.
	Release(ctx context.Context, appID string)
}

// admitQuota applies the cluster-wide quota to a connection this node already admitted (4004 past
// it, 4100 while the quota cannot be read: the client retries after a while).
func (s *Server) admitQuota(c *Conn) *pusher.Error {
	max := c.app.MaxConnections
	if s.cfg.Quota == nil || max <= 0 {
		return nil
	}
	ok, err := s.cfg.Quota.Admit(s.ctx, c.app.ID, max)
	switch {
	case err != nil:
		s.log.Error().Err(err).Str("app_id", c.app.ID).Msg("connection refused: the cluster's connection quota is unavailable")
		return pusher.CloseError(pusher.CodeOverCapacity, "Over capacity: the server cannot reach its store, reconnect later")
	case !ok:
		return pusher.CloseError(pusher.CodeOverQuota, "Application is over connection quota")
	}
	c.quotaHeld = true
	return nil
}

// releaseQuota undoes admitQuota, on the connection's reader after it closed.
func (s *Server) releaseQuota(c *Conn) {
	if c.quotaHeld {
		s.cfg.Quota.Release(s.ctx, c.app.ID)
	}
}

// Records reports what this node holds that the cluster's stores record, for a cluster that lost
// them (Redis restarted empty) to record them again: subs gets every subscription the channel store
// records, users every signed-in socket and conns each quota-limited app's connection count. A
// subscription still reading its snapshot is left out: its own Subscribe records it.
func (s *Server) Records(subs func(Subscription), users func(appID, userID, socketID string), conns func(appID string, n int)) {
	var batch []Subscription
	for i := range s.hub.shards {
		sh := &s.hub.shards[i]
		sh.mu.RLock()
		for k, ch := range sh.channels {
			ch.mu.RLock()
			for _, sub := range ch.subs {
				if sub.pending != nil {
					continue
				}
				rec := Subscription{AppID: k.app, Channel: k.name, SocketID: sub.conn.id, Counted: counted(sub.conn.app, k.name)}
				if m := sub.member(); m.UserID != "" {
					rec.Member = &m
				}
				batch = append(batch, rec)
			}
			ch.mu.RUnlock()
		}
		sh.mu.RUnlock()
		for _, rec := range batch { // no lock held while the caller works
			switch {
			case strings.HasPrefix(rec.Channel, pusher.ServerToUserPrefix):
				users(rec.AppID, strings.TrimPrefix(rec.Channel, pusher.ServerToUserPrefix), rec.SocketID)
			case !isInternal(rec.Channel):
				subs(rec)
			}
		}
		clear(batch)
		batch = batch[:0]
	}
	for id, a := range s.apps.Load().byID {
		if a.MaxConnections > 0 {
			conns(id, int(a.conns.Load()))
		}
	}
}

// Reconnect closes every connection with 4200, so that its client reconnects at once and joins
// again: the cluster evicted this node's records (it was cut off for longer than the node timeout).
func (s *Server) Reconnect() {
	for _, c := range s.conns.snapshot() {
		c.closeWith(pusher.CloseError(pusher.CodeReconnect, "Server lost its cluster state: reconnect"))
	}
}

// Offline tells a user's watchers it went offline after the grace period, unless it is back by then:
// its last socket was on a node the cluster evicted.
func (s *Server) Offline(appID, userID string) { s.scheduleOffline(appID, userID) }

// healthChecker is what a broker that can lose its way to the other nodes reports through /ready.
type healthChecker interface{ Healthy() error }

// Ready reports whether this node should be sent traffic: it is not shutting down and, in a
// cluster, it hears the other nodes.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return errShuttingDown
	}
	if h, ok := s.broker.(healthChecker); ok {
		return h.Healthy()
	}
	return nil
}

var errShuttingDown = errors.New("shutting down")

// serveReady answers /ready: 200 while Ready, 503 with the reason otherwise. Unlike /up (the process
// runs), it tells a load balancer to stop sending clients to a node cut off from its cluster.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("OK"))
}
