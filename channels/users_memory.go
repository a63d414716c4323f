package channels

import (
	"context"
	"sync"
)

// MemoryUsers is the single-node Users: a count of signed-in sockets per user, with an entry only
// while the user has a socket.
type MemoryUsers struct {
	mu      sync.Mutex
	sockets map[userKey]int
}

type userKey struct{ app, user string }

// NewMemoryUsers returns an empty in-memory user registry.
func NewMemoryUsers() *MemoryUsers { return &MemoryUsers{sockets: make(map[userKey]int)} }

// Connect implements Users.
func (u *MemoryUsers) Connect(_ context.Context, appID, userID, _ string) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := userKey{appID, userID}
	u.sockets[k]++
	return u.sockets[k] == 1, nil
}

// Disconnect implements Users.
func (u *MemoryUsers) Disconnect(_ context.Context, appID, userID, _ string) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := userKey{appID, userID}
	n, ok := u.sockets[k]
	if !ok {
		return false, nil
	}
	if n <= 1 {
		delete(u.sockets, k)
		return true, nil
	}
	u.sockets[k] = n - 1
	return false, nil
}

// Count implements Users.
func (u *MemoryUsers) Count(_ context.Context, appID, userID string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sockets[userKey{appID, userID}], nil
}
