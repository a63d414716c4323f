package channels

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// subprotocols are the WebSocket subprotocols a client may offer (pusher-websocket-swift does); the
// server selects one the client offered, never another.
var subprotocols = []string{
	"pusher-channels-protocol-7", "pusher-channels-protocol-6",
	"pusher-channels-protocol-5", "pusher-channels-protocol-4",
}

func (s *Server) socketOptions() ws.Options {
	return ws.Options{WriteTimeout: s.cfg.WriteTimeout, Subprotocols: subprotocols, Poller: s.poller}
}

// serveWebSocket upgrades /app/{key}, admits the connection, sends pusher:connection_established and
// hands the socket to the connection's reader.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down: reconnect", http.StatusServiceUnavailable)
		return
	}
	sock := ws.Accept(w, r, s.socketOptions())
	if sock == nil {
		return // the handshake failed and was answered
	}
	// The connection is complete before admit registers it: from then on Shutdown and terminations can
	// reach it. Until the 101 answer is out, what they send waits in the queue (its first write is
	// under way).
	c := newConn(s, sock)
	if perr := s.admit(c, r); perr != nil {
		refuse(sock, perr)
		return
	}
	if s.draining.Load() { // Shutdown may have listed the connections before admit registered this one
		c.unregister()
		c.cleanup()
		refuse(sock, pusher.CloseError(pusher.CodeReconnect, "Server shutting down: reconnect"))
		return
	}
	s.established(c, r) // with the 101 answer, in one write; the reader started below finds a failure
	// Until the client sends something the connection needs no reader; where it cannot park, the reader
	// gets a goroutine of its own, since net/http's has a deep stack and holds the request.
	if !sock.ParkIfIdle(c.wake) {
		c.wake()
	}
}

// admit applies the checks of the protocol in its order: protocol version, app key (4001), app enabled
// (4003), TLS (4000), app quota (4004), server capacity (4100). On success c has its app and a socket id.
func (s *Server) admit(c *Conn, r *http.Request) *pusher.Error {
	if perr := checkProtocol(r.URL.Query()["protocol"]); perr != nil {
		return perr
	}
	key := chi.URLParam(r, "key")
	a := s.apps.Load().byKey[key]
	switch {
	case a == nil:
		return pusher.CloseError(pusher.CodeAppNotFound, "App key "+pusher.Truncate(key, 64)+" does not exist")
	case !a.Enabled:
		return pusher.CloseError(pusher.CodeAppDisabled, "Application is disabled")
	case a.RequireTLS && !s.isTLS(r):
		return pusher.CloseError(pusher.CodeTLSOnly, "Application only accepts TLS: reconnect using wss")
	case !s.originAllowed(a, r.Header.Get("Origin")):
		return pusher.CloseError(pusher.CodeUnauthorized, "Origin not allowed")
	}
	if rate := a.ConnectionsPerSecondPerIP; rate > 0 {
		ip := s.clientIP(r)
		ok, untracked := a.addresses.allow(ip, rate)
		if untracked && a.logRefusal() {
			s.log.Warn().Str("app_id", a.ID).Int("tracked", maxTrackedAddresses).
				Msg("connections_per_second_per_ip: too many addresses to track; new ones go uncounted")
		}
		if !ok {
			a.stats.refused[RefusedConnection].Add(1)
			if a.logRefusal() {
				s.log.Warn().Str("app_id", a.ID).Str("address", ip.String()).
					Msg("connection refused: connections_per_second_per_ip (at most one line per 10 s)")
			}
			return pusher.CloseError(pusher.CodeOverCapacity, "Too many new connections from your address: reconnect later")
		}
	}
	c.app = a
	if perr := s.conns.register(c, s.cfg.MaxConnections); perr != nil {
		return perr
	}
	if perr := s.admitQuota(c); perr != nil {
		c.unregister()
		return perr
	}
	return nil
}

// originAllowed applies the app's allowed_origins to a connection's Origin; a refusal is counted and
// logged (at most a line per 10 s), whichever transport it came by.
func (s *Server) originAllowed(a *app, origin string) bool {
	if a.OriginAllowed(origin) {
		return true
	}
	a.stats.refused[RefusedOrigin].Add(1)
	if a.logRefusal() {
		s.log.Warn().Str("app_id", a.ID).Str("origin", pusher.Truncate(origin, 200)).
			Msg("connection refused: origin not in allowed_origins (at most one line per 10 s)")
	}
	return false
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

// refuse ends a connection that was not admitted: the 101 answer, pusher:error (protocol-5 clients
// read only that), then the close frame with the same code, then a bounded wait for the client's
// reply so that the close code is read before the socket goes.
func refuse(sock *ws.Socket, perr *pusher.Error) {
	sock.CloseAfter([]ws.Frame{
		{Op: ws.OpText, Data: pusher.ErrorFrame(perr)},
		{Op: ws.OpClose, Data: ws.ClosePayload(perr.Code, perr.Message)},
	}, closeGrace)
}

// serveNotFound answers unknown paths: a WebSocket upgrade gets close 4005 so clients stop retrying a
// wrong URL; anything else a plain 404.
func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	if !ws.IsUpgrade(r) {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if sock := ws.Accept(w, r, s.socketOptions()); sock != nil {
		refuse(sock, pusher.CloseError(pusher.CodePathNotFound, "Path not found: connect to /app/{key}"))
	}
}

// clientIP is the address a request came from: the peer's, or, when the peer is a trusted proxy,
// the address X-Forwarded-For names last that is not itself a trusted proxy.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !s.trusted(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a malformed hop: trust nothing before it
		}
		if ip = hop.Unmap(); !s.trusted(ip) {
			return ip
		}
	}
	return ip
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
