package channels

import "context"

// Users records which users are signed in, cluster-wide: a user is online while at least one socket
// (on any node) is signed in as it. Watchlists and the online query read it.
type Users interface {
	// Connect records a signed-in socket; first reports that the user had no socket before.
	Connect(ctx context.Context, appID, userID, socketID string) (first bool, err error)
	// Disconnect removes a socket; last reports that the user has no socket left.
	Disconnect(ctx context.Context, appID, userID, socketID string) (last bool, err error)
	// Count returns how many sockets are signed in as the user.
	Count(ctx context.Context, appID, userID string) (int, error)
}
