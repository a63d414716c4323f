package channels

// Hooks receives the lifecycle events webhooks are made of. The server calls them from connection
// goroutines: implementations must return quickly and never block (queue and deliver elsewhere).
// Occupancy and membership are reported as this node sees them.
type Hooks interface {
	ChannelOccupied(appID, channel string)
	ChannelVacated(appID, channel string)
	MemberAdded(appID, channel, userID string)
	MemberRemoved(appID, channel, userID string)
	ClientEvent(appID, channel, event, data, socketID, userID string)
}

// noHooks is the Hooks of a server without webhooks.
type noHooks struct{}

func (noHooks) ChannelOccupied(string, string)                             {}
func (noHooks) ChannelVacated(string, string)                              {}
func (noHooks) MemberAdded(string, string, string)                         {}
func (noHooks) MemberRemoved(string, string, string)                       {}
func (noHooks) ClientEvent(string, string, string, string, string, string) {}
