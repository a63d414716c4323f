package channels

import "github.com/herald-rt/herald/pusher"

// Hooks receives the lifecycle events webhooks are made of (channel occupied and vacated, members
// added and removed, client events, cache misses, subscription counts). The server calls Emit from
// connection goroutines, so it must return at once and never block: queue, debounce and deliver
// elsewhere. Events are reported as this node sees them.
type Hooks interface {
	Emit(appID string, e pusher.WebhookEvent)
}

// noHooks is the Hooks of a server without webhooks.
type noHooks struct{}

func (noHooks) Emit(string, pusher.WebhookEvent) {}
