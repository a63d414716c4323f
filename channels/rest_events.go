package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-rt/herald/pusher"
)

// trigger is a validated publish: what a REST event becomes before it is encoded.
type trigger struct {
	name, data string
	channels   []string
	except     string
	info       channelInfo
}

// channelInfo is the set of attributes a caller asked for with info=…
type channelInfo struct {
	userCount, subscriptionCount, cache bool
}

func (i channelInfo) any() bool { return i.userCount || i.subscriptionCount }

// parseInfo reads a comma-separated info list; unknown attributes are ignored, as Pusher does.
func parseInfo(s string) channelInfo {
	var i channelInfo
	for _, attr := range strings.Split(s, ",") {
		switch strings.TrimSpace(attr) {
		case pusher.InfoUserCount:
			i.userCount = true
		case pusher.InfoSubscriptionCount:
			i.subscriptionCount = true
		case pusher.InfoCache:
			i.cache = true
		}
	}
	return i
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	if !s.allowPublish(w, rr.app, 1) {
		return
	}
	var req pusher.TriggerRequest
	if err := json.Unmarshal(rr.body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	t, perr := validateTrigger(rr.app, req, false)
	if perr != nil {
		writeProtocolError(w, perr)
		return
	}
	err := s.publishTrigger(r.Context(), rr.app, t)
	if err != nil {
		s.writePublishError(w, rr.app, err)
		return
	}
	resp := pusher.TriggerResponse{}
	if t.info.any() {
		resp.Channels = make(map[string]pusher.ChannelAttributes, len(t.channels))
		for _, ch := range t.channels {
			if resp.Channels[ch], err = s.attributes(r.Context(), rr.app, ch, t.info); err != nil {
				s.storeUnavailable(w, rr.app, err)
				return
			}
		}
	}
	writeJSON(w, resp)
}

func (s *Server) serveBatchEvents(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	var req pusher.BatchRequest
	if err := json.Unmarshal(rr.body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	if max := rr.app.Limits.MaxBatchEvents; len(req.Batch) > max {
		writeError(w, http.StatusBadRequest, "Batch too large: at most "+strconv.Itoa(max)+" events")
		return
	}
	if !s.allowPublish(w, rr.app, len(req.Batch)) {
		return
	}
	// The whole batch is validated before anything is published: a bad event publishes none.
	triggers := make([]trigger, len(req.Batch))
	anyInfo := false
	for i, ev := range req.Batch {
		t, perr := validateTrigger(rr.app, ev, true)
		if perr != nil {
			writeError(w, perr.HTTPStatus(), "Batch event "+strconv.Itoa(i)+": "+perr.Message)
			return
		}
		triggers[i] = t
		anyInfo = anyInfo || t.info.any()
	}
	for _, t := range triggers {
		if err := s.publishTrigger(r.Context(), rr.app, t); err != nil {
			s.writePublishError(w, rr.app, err)
			return
		}
	}
	resp := pusher.BatchResponse{}
	if anyInfo {
		resp.Batch = make([]pusher.ChannelAttributes, len(triggers))
		for i, t := range triggers {
			if !t.info.any() {
				continue
			}
			var err error
			if resp.Batch[i], err = s.attributes(r.Context(), rr.app, t.channels[0], t.info); err != nil {
				s.storeUnavailable(w, rr.app, err)
				return
			}
		}
	}
	writeJSON(w, resp)
}

// validateTrigger applies the REST event rules: name, data size (413), channel list and names, the
// encrypted-channel rule, and the socket id format. In a batch only the single channel form is allowed.
func validateTrigger(a *app, req pusher.TriggerRequest, inBatch bool) (trigger, *pusher.Error) {
	l := a.Limits
	switch {
	case req.Name == "":
		return trigger{}, pusher.Errorf("Missing event name")
	case len(req.Name) > l.MaxEventNameLength:
		return trigger{}, pusher.Errorf("Event name too long: at most %d characters", l.MaxEventNameLength)
	case pusher.IsReserved(req.Name):
		return trigger{}, pusher.Errorf("Event name '%s' is reserved: pusher: and pusher_internal: events cannot be published", pusher.Truncate(req.Name, 64))
	case req.Data == nil:
		return trigger{}, pusher.Errorf("Missing data")
	case len(*req.Data) > l.MaxEventDataBytes:
		return trigger{}, &pusher.Error{Message: "Event data too large: at most " + strconv.Itoa(l.MaxEventDataBytes) + " bytes", Status: http.StatusRequestEntityTooLarge}
	case req.SocketID != "" && !pusher.ValidSocketID(req.SocketID):
		return trigger{}, pusher.Errorf("Invalid socket_id '%s'", pusher.Truncate(req.SocketID, 64))
	}
	channels := req.Channels
	if inBatch && len(channels) > 0 {
		return trigger{}, pusher.Errorf("Batch events take a single 'channel', not 'channels'")
	}
	if len(channels) == 0 && req.Channel != "" {
		channels = []string{req.Channel}
	}
	if len(channels) == 0 {
		return trigger{}, pusher.Errorf("Missing channels: give 'channels' (a list) or 'channel'")
	}
	if len(channels) > l.MaxChannelsPerEvent {
		return trigger{}, pusher.Errorf("Too many channels: at most %d per event", l.MaxChannelsPerEvent)
	}
	channels = dedupe(channels)
	encrypted := false
	for _, ch := range channels {
		if perr := pusher.ValidateChannelName(ch, l.MaxChannelNameLength); perr != nil {
			return trigger{}, perr
		}
		if kind, _ := pusher.KindOf(ch); kind == pusher.KindEncrypted {
			encrypted = true
		}
	}
	if encrypted && len(channels) > 1 {
		return trigger{}, pusher.Errorf("An event to a private-encrypted- channel must go to that channel alone")
	}
	return trigger{name: req.Name, data: string(*req.Data), channels: channels, except: req.SocketID, info: parseInfo(req.Info)}, nil
}

// dedupe drops repeated channel names, keeping the first, so a channel listed twice gets one copy.
func dedupe(channels []string) []string {
	if len(channels) < 2 {
		return channels
	}
	seen := make(map[string]struct{}, len(channels))
	out := make([]string, 0, len(channels))
	for _, ch := range channels {
		if _, dup := seen[ch]; !dup {
			seen[ch] = struct{}{}
			out = append(out, ch)
		}
	}
	return out
}

// attributes describes one channel as info asks, after a publish.
func (s *Server) attributes(ctx context.Context, a *app, name string, info channelInfo) (pusher.ChannelAttributes, error) {
	ch, err := s.store.Info(ctx, a.ID, name)
	return info.of(ch), err
}

// publishTrigger encodes the event once per channel and publishes it. A cache channel stores the event
// before it is fanned out, and the event carries its cache sequence, so a concurrent subscriber gets
// it either replayed or live, never an older one after it (see Message.Cached). A failure stops at the
// channel it happened on: the caller must answer it, never with a 200 that delivered nowhere.
func (s *Server) publishTrigger(ctx context.Context, a *app, t trigger) error {
	for _, ch := range t.channels {
		m := Message{AppID: a.ID, Channel: ch, Frame: pusher.EventFrame(t.name, ch, t.data, ""), Except: t.except}
		if s.cfg.Observer != nil && s.publishes.Add(1)%publishSampleEvery == 0 {
			m.Published = time.Now().UnixNano()
		}
		if _, cached := pusher.KindOf(ch); cached {
			seq, err := s.cache.Set(ctx, a.ID, ch, m.Frame, s.cfg.CacheTTL)
			if err != nil {
				return fmt.Errorf("cache %s: %w", ch, err)
			}
			m.Cached = seq
		}
		if err := s.broker.Publish(ctx, m); err != nil {
			return fmt.Errorf("publish %s: %w", ch, err)
		}
	}
	s.Note(a.ID, FeedEvent{Kind: FeedPublish, Channels: t.channels[:min(len(t.channels), maxFeedChannels)],
		Event: t.name, Size: len(t.data), Detail: feedText(t.data)})
	return nil
}

// writePublishError answers a publish the broker or cache could not take: 503, so the SDK reports
// it and the caller can retry, and a log line.
func (s *Server) writePublishError(w http.ResponseWriter, a *app, err error) {
	s.log.Error().Err(err).Str("app_id", a.ID).Msg("REST publish failed")
	writeError(w, http.StatusServiceUnavailable, "Publish failed, try again: "+err.Error())
}

// allowPublish applies the app's publishes_per_second to events about to be published, and answers
// 429 with Retry-After (whole seconds, at least one) when they are over it.
func (s *Server) allowPublish(w http.ResponseWriter, a *app, events int) bool {
	rate := a.PublishesPerSecond
	if rate <= 0 || events == 0 {
		return true
	}
	ok, wait := a.publish.allow(rate, events)
	if ok {
		return true
	}
	a.stats.refused[RefusedPublish].Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
	writeError(w, http.StatusTooManyRequests, "Too many events: the app publishes at most "+strconv.Itoa(rate)+" a second, try again later")
	return false
}
