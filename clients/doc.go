// Package clients is Herald's Go SDK: a REST client for the HTTP API under /apps/{app_id} and a
// realtime WebSocket client for /app/{key}. Herald's end-to-end tests, the herald-bench load
// generator and Go applications all use it, so it speaks the protocol exactly as PROTOCOL.md writes it
// and leaves validation to the server: what it is given is what goes on the wire, which lets tests
// send bad input on purpose.
//
// REST:
//
//	rest := clients.NewREST(clients.RESTConfig{BaseURL: "http://127.0.0.1:6001", AppID: "1", Key: key, Secret: secret})
//	_, err := rest.Trigger(ctx, []string{"orders"}, "created", `{"id":7}`, nil)
//
// Realtime:
//
//	conn, err := clients.Dial(ctx, "ws://127.0.0.1:6001/app/"+key, nil)
//	_, err = conn.SubscribeAndWait(ctx, "private-orders", clients.SignedAuthorizer(key, secret, nil))
//	ev, err := conn.WaitFor(ctx, func(e clients.Event) bool { return e.Event == "created" })
//
// A Conn costs one goroutine, its read buffers and a bounded event queue: about 17 KiB plus 64 bytes
// per queued event (DialOptions.EventBuffer, 256 by default, so ~33 KiB). The goroutine reads frames
// and queues the events; when the application does not keep up and the queue is full it stops reading,
// so the server sees a slow consumer exactly as it would with a slow real client. A load generator
// sets a small EventBuffer and consumes channel events in DialOptions.OnEvent.
package clients
