// Package pusher is the Pusher Channels protocol as data: event names, the message envelope and its
// encoding, channel kinds and name rules, limits, error and close codes, socket ids, apps, and the
// REST bodies. It does no I/O and starts no goroutines, so the server, the Go SDK in clients/ and the
// tests all speak the protocol through the same small set of types.
//
// The flow of one connection, as stock SDKs expect it:
//
//	client                                   server
//	  |--- WebSocket upgrade /app/{key} ------->|  path, protocol, app, quota checked
//	  |<-- pusher:connection_established -------|  always the first frame
//	  |--- pusher:subscribe {channel,auth,…} -->|  name rules, signature, presence member
//	  |<-- pusher_internal:member_added --------|  (to the other presence members)
//	  |<-- pusher_internal:subscription_succeeded
//	  |<-- channel events (REST or client-) ----|  encoded once, fanned out to every subscriber
//	  |--- pusher:ping / client-* events ------>|
//	  |<-- pusher:pong / pusher:error ----------|  errors with a 4000–4299 code also close
//
// Every server→client event carries data as a JSON string, except pusher:error whose data is an
// object; see the Append* and *Frame functions.
package pusher
