package channels

import (
	"reflect"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// Reload puts a new set of apps in place while the server runs (herald reloads on SIGHUP). An app
// whose settings are unchanged keeps its connections and counters, and no other app's change
// touches them. A changed app's connections are asked to reconnect (4200), so that every one runs on
// the new settings (its secret, limits, origins); a disabled app's are closed with 4003 and a removed
// app's with 4001, and those two do not reconnect. The apps are checked as New checks them: on an
// error nothing changes. It reports how many apps changed and were removed.
func (s *Server) Reload(apps []pusher.App, tokenKeys map[string]auth.TokenKey) (changed, removed int, err error) {
	next, err := newAppRegistry(apps, tokenKeys)
	if err != nil {
		return 0, 0, err
	}
	prev := s.apps.Load()
	for id, a := range next.byID {
		if p := prev.byID[id]; p != nil && reflect.DeepEqual(p.App, a.App) {
			next.byID[id], next.byKey[a.Key] = p, p
		}
	}
	gone := map[*app]*pusher.Error{}
	for id, p := range prev.byID {
		switch a := next.byID[id]; {
		case a == nil:
			gone[p] = pusher.CloseError(pusher.CodeAppNotFound, "App no longer exists")
			removed++
		case a != p && !a.Enabled:
			gone[p] = pusher.CloseError(pusher.CodeAppDisabled, "Application is disabled")
			changed++
		case a != p:
			gone[p] = pusher.CloseError(pusher.CodeReconnect, "Application settings changed: reconnect")
			changed++
		}
	}
	s.apps.Store(next)
	if len(gone) > 0 {
		for _, c := range s.conns.snapshot() {
			if perr := gone[c.app]; perr != nil {
				c.closeWith(perr)
			}
		}
	}
	return changed, removed, nil
}
