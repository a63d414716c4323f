package console

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/pusher"
)

// What one snapshot of an app's channels carries at most: the busiest channels, and the members of
// the first presence channels among them. A page is for people; the REST API lists everything.
const (
	maxSnapshotChannels = 200
	maxSnapshotRosters  = 20
	maxSnapshotMembers  = 50
	maxUserInfo         = 512
	streamWriteTimeout  = 10 * time.Second
)

// snapshot is an app's channels as a page shows them.
type snapshot struct {
	Time     int64            `json:"t"`
	Total    int              `json:"total"` // occupied channels; Channels holds at most maxSnapshotChannels
	Channels []channelSummary `json:"channels"`
}

type channelSummary struct {
	Name          string   `json:"name"`
	Subscriptions int      `json:"subscriptions"`
	Users         int      `json:"users,omitempty"`
	Members       []member `json:"members,omitempty"`
}

type member struct {
	ID   string          `json:"id"`
	Info json.RawMessage `json:"info,omitempty"`
}

// serveStream sends the app's feed as Server-Sent Events: "batch" (each node's FeedBatch, as it
// published it), "channels" (a snapshot every SnapshotEvery) and "missed" (batches this page fell too
// far behind to get). A page that stops reading is cut off after streamWriteTimeout, and its session
// is checked again with each snapshot.
func (c *Console) serveStream(w http.ResponseWriter, r *http.Request) {
	appID := chi.URLParam(r, "appID")
	select {
	case c.watchers <- struct{}{}:
		defer func() { <-c.watchers }()
	default:
		writeError(w, http.StatusServiceUnavailable, "too many consoles are watching this node")
		return
	}
	watch, err := c.srv.Watch(r.Context(), appID)
	if err != nil {
		c.log.Error().Err(err).Str("app_id", appID).Msg("console cannot watch the app")
		writeError(w, http.StatusServiceUnavailable, "cannot watch the app: "+err.Error())
		return
	}
	defer watch.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx must pass each event on at once
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, data []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		buf := make([]byte, 0, len(data)+len(event)+16)
		buf = append(append(append(append(buf, "event: "...), event...), "\ndata: "...), data...)
		if _, err := w.Write(append(buf, "\n\n"...)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("channels", c.snapshot(r, appID)) {
		return
	}
	tick := time.NewTicker(c.cfg.SnapshotEvery)
	defer tick.Stop()
	var missed int64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-watch.Done():
			return
		case b := <-watch.C:
			if !send("batch", b) {
				return
			}
		case <-tick.C:
			if s, ok := c.session(r); !ok || !s.may(appID) {
				send("signedout", []byte("{}"))
				return
			}
			if n := watch.Missed(); n != missed {
				missed = n
				if !send("missed", []byte(`{"batches":`+strconv.FormatInt(n, 10)+`}`)) {
					return
				}
			}
			if !send("channels", c.snapshot(r, appID)) {
				return
			}
		}
	}
}

// snapshot reads the app's channels and the members of its first presence channels, cluster-wide.
// A store that does not answer is reported in the snapshot, not by ending the stream.
func (c *Console) snapshot(r *http.Request, appID string) []byte {
	list, err := c.srv.ListChannels(r.Context(), appID)
	if err != nil {
		b, _ := json.Marshal(map[string]any{"t": time.Now().UnixMilli(), "error": "the store is unavailable: " + err.Error()})
		return b
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Subscriptions != list[j].Subscriptions {
			return list[i].Subscriptions > list[j].Subscriptions
		}
		return list[i].Name < list[j].Name
	})
	s := snapshot{Time: time.Now().UnixMilli(), Total: len(list), Channels: make([]channelSummary, 0, min(len(list), maxSnapshotChannels))}
	rosters := 0
	for _, ch := range list[:min(len(list), maxSnapshotChannels)] {
		sum := channelSummary{Name: ch.Name, Subscriptions: ch.Subscriptions, Users: ch.Users}
		if kind, _ := pusher.KindOf(ch.Name); kind == pusher.KindPresence && rosters < maxSnapshotRosters {
			rosters++
			sum.Members = c.members(r, appID, ch.Name)
		}
		s.Channels = append(s.Channels, sum)
	}
	b, _ := json.Marshal(s)
	return b
}

func (c *Console) members(r *http.Request, appID, channel string) []member {
	roster, err := c.srv.Members(r.Context(), appID, channel)
	if err != nil {
		return nil
	}
	out := make([]member, 0, min(len(roster.Members), maxSnapshotMembers))
	for _, m := range roster.Members[:min(len(roster.Members), maxSnapshotMembers)] {
		mm := member{ID: m.UserID}
		if len(m.Info) <= maxUserInfo && json.Valid(m.Info) {
			mm.Info = m.Info
		}
		out = append(out, mm)
	}
	return out
}

var _ Server = (*channels.Server)(nil)
