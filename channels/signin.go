package channels

import (
	"context"
	"sync"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// watchlistPrefix names the internal channel that carries a user's online and offline events to the
// sockets watching it. Clients cannot subscribe to it: only #server-to-user- may start with '#'.
const watchlistPrefix = "#watchlist-"

// handleSignin answers pusher:signin. A failure is reported with code 4009 inside pusher:error but
// does not close the connection (only the authorization timeout does), so the app may retry.
func (c *Conn) handleSignin(f pusher.ClientFrame) {
	if perr := c.signin(f); perr != nil {
		c.noteError(perr)
		c.send(pusher.ErrorFrame(perr))
	}
}

// signin verifies the signature over socket_id::user::user_data, checks user_data, and makes the
// socket its user's: it joins the user's #server-to-user- channel (sendToUser and terminate reach it
// there), counts towards the user being online, and starts watching the user's watchlist.
func (c *Conn) signin(f pusher.ClientFrame) *pusher.Error {
	refuse := func(msg string) *pusher.Error { return &pusher.Error{Code: pusher.CodeUnauthorized, Message: msg} }
	var d pusher.SigninData
	if err := pusher.DecodeData(f.Data, &d); err != nil || d.UserData == "" {
		return refuse("Invalid signin: data must be an object with auth and user_data")
	}
	userData := string(d.UserData)
	if err := auth.VerifyUser(c.app.Key, c.app.Secret, d.Auth, c.id, userData); err != nil {
		return refuse(err.Error())
	}
	u, perr := pusher.ParseUserData(userData, c.app.Limits)
	if perr != nil {
		return refuse(perr.Message)
	}
	if c.user != nil {
		if c.user.ID != u.ID {
			return refuse("Already signed in as a different user on this connection")
		}
		c.send(pusher.SigninSuccessFrame(userData))
		return nil
	}
	truncated := len(u.Watchlist) > pusher.MaxWatchlist
	if truncated {
		u.Watchlist = u.Watchlist[:pusher.MaxWatchlist]
	}
	c.user = &u
	c.authorized.Store(true)
	ctx := c.srv.ctx
	c.joinInternal(ctx, pusher.ServerToUserPrefix+u.ID, false)
	first, err := c.srv.users.Connect(ctx, c.app.ID, u.ID, c.id)
	if err != nil {
		c.logger().Error().Err(err).Str("user_id", u.ID).Msg("user registry unavailable")
	}
	if first && !c.srv.offline.cancel(userKey{c.app.ID, u.ID}) {
		c.srv.publish(Message{AppID: c.app.ID, Channel: watchlistPrefix + u.ID, Frame: pusher.WatchlistFrame([]string{u.ID}, nil)})
	}
	// Confirmed only once the user counts as online: a client told it is signed in may rely on others
	// seeing it so (a watcher signing in next must find it online).
	c.send(pusher.SigninSuccessFrame(userData))
	c.watch(ctx, u.Watchlist)
	if truncated {
		c.send(pusher.ErrorFrame(&pusher.Error{Code: pusher.CodeWatchlistLimit,
			Message: "Watchlist limit exceeded: only the first 100 user ids are watched"}))
	}
	return nil
}

// watch subscribes the socket to the watchlist channels of ids and tells it their current status.
// A user whose offline event is still within its grace period counts as online. A user may come or
// go while the status is read: the subscriptions collect such events until the status has gone out,
// so that the socket's last word on every user is the latest.
func (c *Conn) watch(ctx context.Context, ids []string) {
	var subs []*subscription
	var online, offline []string
	for _, id := range ids {
		if id == "" || len(id) > c.app.Limits.MaxUserIDLength {
			continue
		}
		sub := c.joinInternal(ctx, watchlistPrefix+id, true)
		if sub == nil {
			continue // already watched
		}
		subs = append(subs, sub)
		n, _ := c.srv.users.Count(ctx, c.app.ID, id)
		if n > 0 || c.srv.offline.isPending(userKey{c.app.ID, id}) {
			online = append(online, id)
		} else {
			offline = append(offline, id)
		}
	}
	var snapshot [][]byte
	if len(subs) > 0 {
		snapshot = [][]byte{pusher.WatchlistFrame(online, offline)}
	}
	for _, sub := range subs {
		c.srv.hub.activate(sub, snapshot, 0, 0)
		snapshot = nil
	}
}

// signout runs when a signed-in connection ends: once the user's last socket is gone, watchers are
// told it is offline after the grace period, unless it signs in again first.
func (c *Conn) signout(ctx context.Context) {
	if c.user == nil {
		return
	}
	appID, userID := c.app.ID, c.user.ID
	last, err := c.srv.users.Disconnect(ctx, appID, userID, c.id)
	if err != nil {
		c.logger().Error().Err(err).Str("user_id", userID).Msg("user registry unavailable")
	}
	if last {
		c.srv.scheduleOffline(appID, userID)
	}
}

// scheduleOffline tells a user's watchers it is offline once the grace period has passed, unless it
// is back by then on any node.
func (s *Server) scheduleOffline(appID, userID string) {
	s.offline.schedule(userKey{appID, userID}, s.cfg.WatchlistGrace, func() {
		if n, err := s.users.Count(s.ctx, appID, userID); err == nil && n > 0 {
			return // back on another node within the grace period
		}
		s.publish(Message{AppID: appID, Channel: watchlistPrefix + userID, Frame: pusher.WatchlistFrame(nil, []string{userID})})
	})
}

// offlineTimers holds the offline events waiting out their grace period, one per user at most, so its
// size is bounded by the users who left in the last few seconds.
type offlineTimers struct {
	mu      sync.Mutex
	pending map[userKey]*time.Timer
}

func (o *offlineTimers) schedule(k userKey, after time.Duration, fire func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := o.pending[k]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(after, func() {
		o.mu.Lock()
		current := o.pending[k] == t
		if current {
			delete(o.pending, k)
		}
		o.mu.Unlock()
		if current {
			fire()
		}
	})
	o.pending[k] = t
}

// cancel drops a pending offline event and reports whether there was one: the user came back in time.
func (o *offlineTimers) cancel(k userKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.pending[k]
	if t == nil {
		return false
	}
	t.Stop()
	delete(o.pending, k)
	return true
}

func (o *offlineTimers) isPending(k userKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[k] != nil
}
