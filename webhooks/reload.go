package webhooks

import (
	"errors"
	"maps"
	"reflect"
)

// newAppSet builds the apps of a configuration. An app whose configuration prev holds unchanged is
// prev's own; the others are new (see Reload for what they keep of prev).
func newAppSet(configs []App, prev *appSet) *appSet {
	set := &appSet{byID: map[string]*app{}}
	for _, c := range configs {
		a := newApp(c)
		if len(a.endpoints) == 0 {
			continue
		}
		if p := prev.app(c.ID); p != nil && reflect.DeepEqual(p.App, a.App) {
			a = p
		}
		set.byID[a.ID] = a
		set.list = append(set.list, a)
	}
	return set
}

func (s *appSet) app(id string) *app {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// CheckApps reports whether Reload would take apps, naming the field at fault if not.
func (d *Dispatcher) CheckApps(apps []App) error {
	cfg := d.cfg
	cfg.Apps = apps
	_, err := cfg.withDefaults()
	return err
}

var errReloadClosed = errors.New("webhooks: reload after shutdown")

// Reload replaces the apps' webhook configuration while events flow, without losing or reordering
// what each endpoint already has:
//   - an app whose configuration is unchanged keeps everything;
//   - in an app that changed (its secret, batching, or endpoints), an endpoint whose own settings
//     are unchanged keeps its queue and its place in the debounce, and from then on signs with
//     the app's new secret;
//   - an endpoint that is gone (or whose URL, filters, headers or naming changed) delivers what it
//     already holds, then ends; the events of its app go to the new endpoints from now on.
//
// A removed app's events are ignored from then on. The configuration is checked as New checks it;
// a bad one changes nothing and the error names the field.
func (d *Dispatcher) Reload(apps []App) error {
	if err := d.CheckApps(apps); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return errReloadClosed
	}
	prev := d.apps.Load()
	next := newAppSet(apps, prev)
	moved := map[*app]*app{} // a changed app's old struct to its new one
	for _, a := range next.list {
		if p := prev.app(a.ID); p != nil && p != a {
			moved[p] = a
			d.adoptEndpoints(p, a)
		}
	}
	for _, p := range prev.list {
		if next.app(p.ID) == nil {
			d.retired = append(d.retired, p.endpoints...)
		}
	}
	// The debounce entries of a changed app follow it, their endpoints renumbered; a removed app's
	// entries that wait for nothing are forgotten (its events are ignored from now on).
	for k, s := range maps.Clone(d.occupancy) {
		switch a := moved[k.app]; {
		case a != nil:
			delete(d.occupancy, k)
			s.told = retell(s.told, k.app, a)
			k.app = a
			s.key = k
			d.occupancy[k] = s
		case next.app(k.app.ID) == nil && s.pending == nil:
			delete(d.occupancy, k)
		}
	}
	d.apps.Store(next)
	d.pruneRetired()
	d.settle()
	return nil
}

// adoptEndpoints gives the new app a's endpoints that p already has (same settings) p's endpoint,
// queue and all, and retires p's others.
func (d *Dispatcher) adoptEndpoints(p, a *app) {
	kept := map[*endpoint]bool{}
	for i, ep := range a.endpoints {
		for _, old := range p.endpoints {
			if !kept[old] && old.sameSettings(ep) {
				old.app, old.bit = a, ep.bit
				a.endpoints[i] = old
				kept[old] = true
				break
			}
		}
	}
	for _, old := range p.endpoints {
		if !kept[old] {
			old.bit = 0 // it hears no fall of a rise it did not carry
			d.retired = append(d.retired, old)
		}
	}
}

// retell maps a told set of p's endpoints onto a's: an endpoint a kept from p keeps its bit's
// meaning under its new number; a new endpoint was told nothing.
func retell(told uint64, p, a *app) uint64 {
	var out uint64
	for i, old := range p.endpoints { // p's endpoints in their old order: bit i was old's
		if told&(1<<i) != 0 && old.app == a {
			out |= old.bit // its new bit, given by adoptEndpoints
		}
	}
	return out
}

// sameSettings reports whether two endpoints would send the same requests to the same place.
func (ep *endpoint) sameSettings(o *endpoint) bool {
	return ep.url == o.url && ep.prefix == o.prefix && ep.suffix == o.suffix && ep.webman == o.webman &&
		maps.Equal(ep.headers, o.headers) && maps.Equal(ep.types, o.types)
}

// pruneRetired forgets retired endpoints that have delivered everything.
func (d *Dispatcher) pruneRetired() {
	kept := d.retired[:0]
	for _, ep := range d.retired {
		if ep.queue.len() > 0 || ep.job != nil {
			kept = append(kept, ep)
		}
	}
	clear(d.retired[len(kept):])
	d.retired = kept
}
