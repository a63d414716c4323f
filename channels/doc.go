// Package channels is the realtime server: connections speaking the Pusher protocol, the sharded
// hub, the store interfaces (Broker, Presence, Users, Cache) with their in-memory implementations,
// and the REST API.
//
// A publish (REST trigger, client event, member event) is validated once and encoded once into the
// exact frame every subscriber receives, handed to the Broker, and delivered by looking the channel up
// in the hub and handing the same bytes to each subscriber's bounded send queue.
//
// # Goroutines
//
//   - A connection's reader (serve) runs only while its client has sent something; an idle
//     connection is parked on the Server's poller (internal/ws) and woken when bytes arrive. It owns
//     the connection's subscriptions, rate limits and sign-in, and makes the store calls of what the
//     client asked for.
//   - A connection's writer (sendQueue.writeLoop) runs only while frames are queued.
//   - Fan-outs run on whatever goroutine published: a REST handler, a reader, a timer, or the
//     broker's receiving goroutine on a cluster.
//   - Timers: a connection's liveness check and authorization deadline, offline grace periods,
//     subscription count windows.
//
// # Locks
//
// Each lock is held only for in-memory work: no store call, no network I/O, no waiting on a client is
// ever made with a lock of this package held. Store calls take a ctx; the order of what they report
// comes from versions the stores hand out (Message.Roster, Message.Cached, Message.Count), not from
// holding a lock around them. Where two locks nest, they are taken in this order:
//
//  1. hubShard.mu (a stripe of the channel index), then
//  2. channel.mu (one channel's subscribers; a fan-out holds it as a reader), then
//  3. pendingFrames.mu (a subscription collecting frames while its snapshot is read), or
//     sendQueue.mu (one connection's outgoing frames), then
//  4. the socket's write lock (internal/ws), taken by a direct write with sendQueue.mu released.
//
// Leaf locks, under which nothing else is taken: connRegistry shards, offlineTimers, countThrottle
// and the in-memory stores' own locks. MemoryPresence alone publishes under its
// per-stripe announcing lock (a fan-out, so levels 1–4 beneath it): that is what keeps a channel's
// member announcements in the order of its changes on one node.
package channels
