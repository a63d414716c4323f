package channels

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/pusher"
)

// serveChannels lists the app's occupied channels, optionally filtered by prefix, with the attributes
// asked for, cluster-wide. Internal channels (#server-to-user-, #watchlist-) are never recorded.
func (s *Server) serveChannels(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	q := r.URL.Query()
	prefix := q.Get("filter_by_prefix")
	info := parseInfo(q.Get("info"))
	if info.userCount && !strings.HasPrefix(prefix, "presence-") {
		writeError(w, http.StatusBadRequest, "info=user_count requires filter_by_prefix=presence-")
		return
	}
	list, err := s.store.List(r.Context(), rr.app.ID, prefix, info.userCount)
	if err != nil {
		s.storeUnavailable(w, rr.app, err)
		return
	}
	resp := pusher.ChannelsResponse{Channels: make(map[string]pusher.ChannelAttributes, len(list))}
	for _, ch := range list {
		resp.Channels[ch.Name] = info.of(ch)
	}
	writeJSON(w, resp)
}

// storeUnavailable answers a REST call whose store did not answer: 503, logged.
func (s *Server) storeUnavailable(w http.ResponseWriter, a *app, err error) {
	s.log.Error().Err(err).Str("app_id", a.ID).Msg("REST call failed: store unavailable")
	writeError(w, http.StatusServiceUnavailable, "The server cannot reach its store, try again")
}

// serveChannel describes one channel; an unoccupied channel is {"occupied":false}, not a 404.
func (s *Server) serveChannel(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	name, perr := channelParam(r, rr.app)
	if perr != nil {
		writeProtocolError(w, perr)
		return
	}
	info := parseInfo(r.URL.Query().Get("info"))
	kind, cached := pusher.KindOf(name)
	if info.userCount && kind != pusher.KindPresence {
		writeError(w, http.StatusBadRequest, "info=user_count is only available for presence- channels")
		return
	}
	if info.cache && !cached {
		writeError(w, http.StatusBadRequest, "info=cache is only available for cache channels")
		return
	}
	ch, err := s.store.Info(r.Context(), rr.app.ID, name)
	if err != nil {
		s.storeUnavailable(w, rr.app, err)
		return
	}
	attrs := info.of(ch)
	resp := pusher.ChannelResponse{
		Occupied:          ch.Subscriptions > 0,
		UserCount:         attrs.UserCount,
		SubscriptionCount: attrs.SubscriptionCount,
	}
	if info.cache {
		resp.Cache = &pusher.CacheField{}
		ev, ok, err := s.cache.Get(r.Context(), rr.app.ID, name)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "Cache is unavailable, try again")
			return
		}
		if ok {
			resp.Cache.Info = &pusher.CacheInfo{Data: eventData(ev.Frame), TTL: int((ev.TTL + time.Second - 1) / time.Second)}
		}
	}
	writeJSON(w, resp)
}

// serveUsers lists the distinct users of a presence channel.
func (s *Server) serveUsers(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	name, perr := channelParam(r, rr.app)
	if perr != nil {
		writeProtocolError(w, perr)
		return
	}
	if kind, _ := pusher.KindOf(name); kind != pusher.KindPresence {
		writeError(w, http.StatusBadRequest, "Users are only available for presence- channels")
		return
	}
	roster, err := s.store.Members(r.Context(), rr.app.ID, name)
	if err != nil {
		s.storeUnavailable(w, rr.app, err)
		return
	}
	resp := pusher.UsersResponse{Users: make([]pusher.User, len(roster.Members))}
	for i, m := range roster.Members {
		resp.Users[i] = pusher.User{ID: m.UserID}
	}
	writeJSON(w, resp)
}

func channelParam(r *http.Request, a *app) (string, *pusher.Error) {
	name, err := url.PathUnescape(chi.URLParam(r, "channel"))
	if err != nil {
		return "", pusher.Errorf("Invalid channel name in path")
	}
	if perr := pusher.ValidateChannelName(name, a.Limits.MaxChannelNameLength); perr != nil {
		return "", perr
	}
	return name, nil
}

// of picks the attributes asked for out of a channel's description. user_count applies to presence
// channels only; subscription_count is given for every channel.
func (i channelInfo) of(ch ChannelInfo) pusher.ChannelAttributes {
	var attrs pusher.ChannelAttributes
	if kind, _ := pusher.KindOf(ch.Name); i.userCount && kind == pusher.KindPresence {
		n := ch.Users
		attrs.UserCount = &n
	}
	if i.subscriptionCount {
		n := ch.Subscriptions
		attrs.SubscriptionCount = &n
	}
	return attrs
}

// eventData is the data of an event frame Herald encoded.
func eventData(frame []byte) string {
	f, _ := pusher.DecodeClientFrame(frame)
	data, _ := pusher.TextOf(f.Data)
	return data
}
