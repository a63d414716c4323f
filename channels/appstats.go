package channels

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// appStats are an app's counters on this node, for metrics. Each is an atomic add where it is
// counted (a publish counts its deliveries once, not once per subscriber), so measuring costs the
// hot path nothing more; Server.AppStats reads them.
type appStats struct {
	opened                atomic.Int64 // connections admitted
	messagesIn, bytesIn   atomic.Int64 // text frames received from clients
	messagesOut, bytesOut atomic.Int64 // frames enqueued to subscribers by publishes
	slowConsumers         atomic.Int64
	refused               [refusalKinds]atomic.Int64
	closesMu              sync.Mutex
	closes                map[int]int64 // connections closed, by close code (0: dropped without one); guarded by closesMu
}

// Refusal is a kind of request refused by a rate limit or an access rule, the reason label of the
// refusals metric.
type Refusal int

const (
	RefusedSubscribe   Refusal = iota // a subscribe past subscriptions_per_second
	RefusedClientEvent                // a client event past client_events_per_second
	RefusedPublish                    // a REST publish past publishes_per_second (429)
	RefusedConnection                 // a connection past connections_per_second from one address
	RefusedOrigin                     // a connection from an origin not in allowed_origins
	refusalKinds
)

// String is the reason label.
func (r Refusal) String() string {
	return [...]string{"subscribe_rate", "client_event_rate", "publish_rate", "connection_rate", "origin"}[r]
}

func (s *appStats) closed(code int) {
	s.closesMu.Lock()
	if s.closes == nil {
		s.closes = make(map[int]int64)
	}
	s.closes[code]++
	s.closesMu.Unlock()
}

// AppStats is a snapshot of one app's counters on this node.
type AppStats struct {
	AppID         string
	Connections   int64 // open now
	Opened        int64
	Closed        map[int]int64 // by close code; 0: the connection dropped without a close frame
	MessagesIn    int64
	BytesIn       int64
	MessagesOut   int64
	BytesOut      int64
	SlowConsumers int64
	Refused       map[string]int64 // by Refusal
	Channels      int64            // with a subscriber on this node now
	Subscriptions int64            // on this node now, Herald's internal channels excluded
}

// AppStats reads every app's counters, sorted by app id. It walks the hub once for the channel and
// subscription gauges, a shard at a time, so it is for a scrape, not a hot path.
func (s *Server) AppStats() []AppStats {
	apps := s.apps.Load().all()
	byID := make(map[string]*AppStats, len(apps))
	out := make([]AppStats, 0, len(apps))
	for _, a := range apps {
		st := &a.stats
		as := AppStats{
			AppID: a.ID, Connections: a.conns.Load(), Opened: st.opened.Load(),
			MessagesIn: st.messagesIn.Load(), BytesIn: st.bytesIn.Load(),
			MessagesOut: st.messagesOut.Load(), BytesOut: st.bytesOut.Load(),
			SlowConsumers: st.slowConsumers.Load(),
			Closed:        map[int]int64{}, Refused: map[string]int64{},
		}
		st.closesMu.Lock()
		for code, n := range st.closes {
			as.Closed[code] = n
		}
		st.closesMu.Unlock()
		for r := range refusalKinds {
			as.Refused[r.String()] = st.refused[r].Load()
		}
		out = append(out, as)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	for i := range out {
		byID[out[i].AppID] = &out[i]
	}
	s.hub.count(func(appID string, subs int) {
		if as := byID[appID]; as != nil {
			as.Channels++
			as.Subscriptions += int64(subs)
		}
	})
	return out
}

// Observer receives the measurements that are distributions rather than counts. Config.Observer nil:
// none is taken.
type Observer interface {
	// REST reports one REST request: its route pattern, status and duration; appID is empty when
	// the request named no known app.
	REST(appID, route string, status int, d time.Duration)
	// Delivered reports the time from a publish's arrival to its frame being handed to every
	// subscriber on this node, for a sample of publishes (one in publishSampleEvery).
	Delivered(appID string, d time.Duration)
}

// publishSampleEvery is how many publishes share one latency measurement: reading the clock once
// per sample keeps the measurement off the hot path.
const publishSampleEvery = 64
