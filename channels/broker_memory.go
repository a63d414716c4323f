package channels

import "context"

// MemoryBroker is the single-node Broker: Publish delivers inline.
type MemoryBroker struct {
	deliver func(Message)
}

// NewMemoryBroker returns a broker for a server that runs alone.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

// Publish delivers m at once; delivery only enqueues, so it returns quickly.
func (b *MemoryBroker) Publish(_ context.Context, m Message) error {
	b.deliver(m)
	return nil
}

// Start sets the delivery function.
func (b *MemoryBroker) Start(deliver func(Message)) error {
	b.deliver = deliver
	return nil
}

// Listen does nothing: the one node receives everything.
func (b *MemoryBroker) Listen(context.Context, string, string) error { return nil }

// Unlisten does nothing.
func (b *MemoryBroker) Unlisten(string, string) {}

// Close does nothing: there is nothing to stop.
func (b *MemoryBroker) Close() error { return nil }
