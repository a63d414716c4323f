package channels

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// app is a configured pusher.App with the state this node keeps for it.
type app struct {
	pusher.App
	conns atomic.Int64 // open connections on this node, for MaxConnections
	stats appStats

	publish      publishLimit // PublishesPerSecond
	addresses    addressLimit // ConnectionsPerSecondPerIP
	refusalsLogs atomic.Int64 // unix nanoseconds a refused origin or address was last logged
}

// logRefusal reports whether a refused connection is to be logged now: at most one line every 10 s
// per app, so a flood of refusals costs no log volume.
func (a *app) logRefusal() bool {
	now, last := time.Now().UnixNano(), a.refusalsLogs.Load()
	return now-last >= int64(10*time.Second) && a.refusalsLogs.CompareAndSwap(last, now)
}

// appRegistry finds apps by the key clients connect with and the id REST calls name. It is fixed at
// construction, so lookups need no lock.
type appRegistry struct {
	byID  map[string]*app
	byKey map[string]*app
	// tokens verify the bearer tokens of the token authorization endpoints, by app id; an app not
	// listed verifies HS256 tokens with its secret.
	tokens map[string]auth.TokenKey
}

func newAppRegistry(apps []pusher.App, tokens map[string]auth.TokenKey) (*appRegistry, error) {
	if len(apps) == 0 {
		return nil, fmt.Errorf("channels: no apps configured")
	}
	r := &appRegistry{byID: make(map[string]*app), byKey: make(map[string]*app), tokens: tokens}
	for _, a := range apps {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("channels: %w", err)
		}
		if _, dup := r.byID[a.ID]; dup {
			return nil, fmt.Errorf("channels: app id %q is configured twice", a.ID)
		}
		if _, dup := r.byKey[a.Key]; dup {
			return nil, fmt.Errorf("channels: app key %q is configured twice", a.Key)
		}
		a.Limits = a.Limits.WithDefaults()
		st := &app{App: a}
		r.byID[a.ID] = st
		r.byKey[a.Key] = st
	}
	return r, tokenKeysValid(tokens, r)
}

// all returns every app.
func (r *appRegistry) all() []*app {
	out := make([]*app, 0, len(r.byID))
	for _, a := range r.byID {
		out = append(out, a)
	}
	return out
}
