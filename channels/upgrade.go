package channels

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/pusher"
)

// subprotocols are the WebSocket subprotocols a client may offer (pusher-websocket-swift does);
// the server selects the one offered, never another.
var subprotocols = []string{
	"pusher-channels-protocol-7", "pusher-channels-protocol-6",
	"pusher-channels-protocol-5", "pusher-channels-protocol-4",
}

// serveWebSocket upgrades /app/{key}, admits the connection, sends pusher:connection_established and
// runs the read loop in this goroutine until the connection ends.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down: reconnect", http.StatusServiceUnavailable)
		return
	}
	c := &Conn{srv: s, done: make(chan struct{})}
	ws, err := s.accept(w, r, c)
	if err != nil {
		return // Accept has answered the request.
	}
	c.ws = ws
	if perr := s.admit(c, r); perr != nil {
		s.refuse(ws, perr)
		return
	}
	c.subs = make(map[string]*subscription)
	s.stats.ConnectionsAccepted.Add(1)
	c.startLiveness()
	c.startAuthorizationTimer()
	c.send(pusher.ConnectionEstablishedFrame(c.id, max(1, int(s.cfg.ActivityTimeout/time.Second))))
	// The read loop gets a goroutine of its own and this handler returns: net/http's goroutine has a
	// deep stack and holds the request, which every idle connection would otherwise keep.
	go c.run()
}

// accept performs the upgrade over Herald's own buffering (see hijacker). Origins are not checked:
// pages on any domain use pusher-js, and the app key is public by design; authority comes from
// signatures.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, c *Conn) (wsTransport, error) {
	h := &hijacker{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(h, r, &websocket.AcceptOptions{
		Subprotocols:       subprotocols,
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
		OnPingReceived:     func(context.Context, []byte) bool { c.touch(); return true },
		OnPongReceived:     func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		return wsTransport{}, err
	}
	ws.SetReadLimit(int64(s.cfg.MaxFrameBytes) * 16)
	return wsTransport{Conn: ws, out: h.conn}, nil
}

// admit applies the checks of the protocol in its order: protocol version, app key (4001), app enabled
// (4003), TLS (4000), app quota (4004), server capacity (4100). On success c has its app and a socket id.
func (s *Server) admit(c *Conn, r *http.Request) *pusher.Error {
	if perr := checkProtocol(r.URL.Query()["protocol"]); perr != nil {
		return perr
	}
	key := chi.URLParam(r, "key")
	a := s.apps.byKey[key]
	switch {
	case a == nil:
		return pusher.CloseError(pusher.CodeAppNotFound, "App key "+pusher.Truncate(key, 64)+" does not exist")
	case !a.Enabled:
		return pusher.CloseError(pusher.CodeAppDisabled, "Application is disabled")
	case a.RequireTLS && !s.isTLS(r):
		return pusher.CloseError(pusher.CodeTLSOnly, "Application only accepts TLS: reconnect using wss")
	}
	c.app = a
	return s.conns.register(c, s.cfg.MaxConnections)
}

// checkProtocol accepts protocol 4–7, and a missing one as 7 (webman's push.js sends no query string).
func checkProtocol(values []string) *pusher.Error {
	if len(values) == 0 || values[0] == "" {
		return nil
	}
	v, err := strconv.Atoi(values[0])
	if err != nil {
		return pusher.CloseError(pusher.CodeInvalidVersion, "Invalid version string format")
	}
	if v < 4 || v > 7 {
		return pusher.CloseError(pusher.CodeUnsupportedProtocol, "Unsupported protocol version "+strconv.Itoa(v)+": use 4 to 7")
	}
	return nil
}

func (s *Server) isTLS(r *http.Request) bool {
	return r.TLS != nil || (s.cfg.TrustForwardedProto && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

// refuse ends a connection that was not admitted: pusher:error first (protocol-5 clients read only
// that), then the close frame with the same code.
func (s *Server) refuse(ws transport, perr *pusher.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, pusher.ErrorFrame(perr)); err != nil {
		_ = ws.CloseNow()
		return
	}
	_ = ws.Close(websocket.StatusCode(perr.Code), closeReason(perr.Message))
}

// serveNotFound answers unknown paths: a WebSocket upgrade gets close 4005 so clients stop retrying a
// wrong URL; anything else a plain 404.
func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h := &hijacker{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(h, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	s.refuse(wsTransport{Conn: ws, out: h.conn}, pusher.CloseError(pusher.CodePathNotFound, "Path not found: connect to /app/{key}"))
}
