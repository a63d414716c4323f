package main

import (
	"net/http"
	"time"
)

// Header limits. Go's own defaults (1 MB of header, no header deadline) let a few hundred unfinished
// requests hold hundreds of megabytes: 200 of them with 1 MB headers raised RSS from 9 MB to 362 MB
// for the 10 s they were allowed (with these limits: a 10 MB peak, every one answered 431). A Pusher
// request or WebSocket upgrade needs a few hundred bytes plus the page's cookies.
const (
	defaultMaxHeaderBytes = 32 << 10
	minMaxHeaderBytes     = 1 << 10
	maxMaxHeaderBytes     = http.DefaultMaxHeaderBytes
)

// httpServer is the public server. It sets no read or write timeout, which would also cut hijacked
// WebSocket connections: the REST routes bound themselves. Past max_header_bytes (plus the 4 KiB
// net/http reads ahead) a request is answered 431 and its connection closed; one whose header is
// not complete within read_header_timeout is closed unanswered. net/http's own errors go to errs.
func (o *options) httpServer(handler http.Handler, errs *httpErrors) *http.Server {
	return &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ReadHeaderTimeout: o.ReadHeaderTimeout.duration(),
		IdleTimeout:       120 * time.Second,
		ErrorLog:          errs.logger(),
	}
}
