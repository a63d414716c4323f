package channels

// subscriptionsInline is how many subscriptions a connection keeps in a slice before it indexes them
// with a map: most connections have a handful of channels, and a map costs hundreds of bytes.
const subscriptionsInline = 8

// subscriptions is a connection's subscriptions by channel name, owned by its reader: a short slice
// searched in order, and a map once there are more than subscriptionsInline.
type subscriptions struct {
	list   []*subscription
	byName map[string]*subscription // nil until the list outgrows subscriptionsInline
}

func (s *subscriptions) get(name string) *subscription {
	if s.byName != nil {
		return s.byName[name]
	}
	for _, sub := range s.list {
		if sub.ch.key.name == name {
			return sub
		}
	}
	return nil
}

func (s *subscriptions) add(sub *subscription) {
	s.list = append(s.list, sub)
	switch {
	case s.byName != nil:
		s.byName[sub.ch.key.name] = sub
	case len(s.list) > subscriptionsInline:
		s.byName = make(map[string]*subscription, 2*len(s.list))
		for _, sub := range s.list {
			s.byName[sub.ch.key.name] = sub
		}
	}
}

func (s *subscriptions) remove(sub *subscription) {
	for i, other := range s.list {
		if other == sub {
			last := len(s.list) - 1
			s.list[i] = s.list[last]
			s.list[last] = nil
			s.list = s.list[:last]
			break
		}
	}
	if s.byName != nil {
		delete(s.byName, sub.ch.key.name)
	}
}

func (s *subscriptions) len() int { return len(s.list) }
