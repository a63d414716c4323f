package main

import "math"

// Without a connection cap, WebSocket clients can take every file descriptor the process may open;
// accept then fails for everyone, and /up and the REST API stop answering exactly when the operator
// needs them. So when max_connections is not set, Herald derives it from the open-files limit (the
// soft RLIMIT_NOFILE, which Go raises to the hard limit at start), leaving headroom for REST calls,
// webhook deliveries, Redis, the listeners and the runtime: past the cap, upgrades are refused with
// 4100 while everything else keeps a descriptor. An explicit max_connections, 0 included, is always
// used as given.

// minFileHeadroom is the fewest descriptors kept free of WebSocket connections: enough for a few
// hundred REST calls and webhook deliveries at once.
const minFileHeadroom = 256

// maxConnections is the cap handed to channels, and whether it was derived from limit, the open-files
// limit (ok false: unknown, as on Windows, where no cap is derived).
func (o *options) maxConnections(limit uint64, ok bool) (n int, derived bool) {
	if o.MaxConnections != nil {
		return *o.MaxConnections, false
	}
	if !ok {
		return 0, false
	}
	return connectionsWithin(limit), true
}

// connectionsWithin is the connection cap for an open-files limit: the limit less max(256, 10%), but
// never less than half of it, so a small limit still admits connections; never 0, which would be no
// cap at all.
func connectionsWithin(limit uint64) int {
	limit = min(limit, math.MaxInt32)
	headroom := min(max(minFileHeadroom, limit/10), limit/2)
	return max(1, int(limit-headroom))
}
