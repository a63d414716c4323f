package channels

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// The HTTP session routes, pusher-js's: {httpPath}/app/{key}/{server}/{session}/{kind}, with kind
// xhr_streaming or xhr (receiving) or xhr_send (sending). pusher-js's default httpPath is /pusher;
// they are also served without it, and under the path prefix.
const sessionRoute = "/app/{key}/{server}/{session}/{kind}"

// pollHold is the longest a poll waits for something to send, and the heartbeat interval of a
// stream: under the 30–60 s a proxy commonly allows a quiet response.
const pollHold = 25 * time.Second

var sessionPart = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,64}$`)

func (s *Server) sessionRoutes(r chi.Router) {
	for _, base := range []string{"", "/pusher"} {
		r.Post(base+sessionRoute, s.serveSession)
		r.Options(base+sessionRoute, s.serveSessionPreflight)
	}
}

// serveSession answers one request of an HTTP session.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	server, session := chi.URLParam(r, "server"), chi.URLParam(r, "session")
	if !sessionPart.MatchString(server) || !sessionPart.MatchString(session) {
		http.Error(w, "malformed session path", http.StatusNotFound)
		return
	}
	if !s.sessionCORS(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	id := chi.URLParam(r, "key") + "/" + server + "/" + session
	switch chi.URLParam(r, "kind") {
	case "xhr_streaming":
		s.serveReceive(w, r, id, true)
	case "xhr":
		s.serveReceive(w, r, id, false)
	case "xhr_send":
		s.serveSend(w, r, id)
	default:
		http.Error(w, "unknown transport: use xhr_streaming, xhr or xhr_send", http.StatusNotFound)
	}
}

// serveSessionPreflight answers a browser's CORS preflight: pusher-js posts JSON across origins.
func (s *Server) serveSessionPreflight(w http.ResponseWriter, r *http.Request) {
	if !s.sessionCORS(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// sessionCORS sets the CORS answer for a request's Origin, and reports false for an origin the
// app's allowed_origins refuses.
func (s *Server) sessionCORS(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if a := s.apps.Load().byKey[chi.URLParam(r, "key")]; a != nil && !s.originAllowed(a, origin) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	return true
}

// serveReceive is a receiving request: the session's first opens it (o) and admits its connection;
// each then takes what waits in the outbox. A stream stays open, writing lines as they come, with a
// heartbeat every pollHold; a poll ends as soon as it has written something, or after pollHold with
// a heartbeat.
func (s *Server) serveReceive(w http.ResponseWriter, r *http.Request, id string, streaming bool) {
	h := s.sessions.get(id)
	opening := h == nil
	if opening {
		if s.draining.Load() {
			http.Error(w, "shutting down: reconnect", http.StatusServiceUnavailable)
			return
		}
		var perr *pusher.Error
		if h, perr = s.openSession(r, id); perr != nil {
			refuseSession(w, perr)
			return
		}
	}
	rcv := &receiver{wake: make(chan struct{}, 1)}
	if !h.attach(rcv) {
		http.Error(w, "session closed", http.StatusNotFound)
		return
	}
	abandoned := false
	defer func() { h.detach(rcv, abandoned, s.cfg.HTTPSessionTimeout) }()
	h.conn.touch()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/javascript; charset=UTF-8")
	hdr.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	hdr.Set("X-Accel-Buffering", "no") // nginx must not hold a stream back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	switch {
	case opening:
		if !write(s.openFrame()) || !streaming {
			return // a poll ends with the open frame; the next takes connection_established
		}
	case streaming:
		if rc.Flush() != nil { // the headers now: a reopened stream may wait a while for its first line
			return
		}
	}
	heartbeat := time.NewTimer(pollHold)
	defer heartbeat.Stop()
	for {
		lines, end, last := h.take(rcv)
		if len(lines) > 0 {
			ok := write(lines)
			switch {
			case !ok:
				h.putBack(lines) // not written: the next receiving request takes them
				return
			case last: // the client has its close code: nothing more will come
				_ = h.Close()
				return
			case !streaming:
				return
			}
		}
		if end {
			return
		}
		select {
		case <-rcv.wake:
		case <-r.Context().Done():
			abandoned = true
			return
		case <-heartbeat.C:
			if !write([]byte("h\n")) || !streaming {
				return
			}
			heartbeat.Reset(pollHold)
		}
	}
}

// openSession admits a new session's connection, as serveWebSocket does a socket's, and queues
// pusher:connection_established for its next receiving request.
func (s *Server) openSession(r *http.Request, id string) (*httpSession, *pusher.Error) {
	h := &httpSession{id: id, reg: &s.sessions, detachedAt: monotonic()}
	c := newConn(s, h)
	h.conn = c
	if perr := s.admit(c, r); perr != nil {
		return nil, perr
	}
	if !s.sessions.add(h) { // two first requests at once: the other one opened it
		c.unregister()
		c.cleanup()
		if other := s.sessions.get(id); other != nil {
			return other, nil
		}
		return nil, pusher.CloseError(pusher.CodeReconnect, "Session lost: reconnect")
	}
	s.established(c, r)
	return h, nil
}

// refuseSession answers a session that was not admitted, in the session's framing: opened, the
// pusher:error, then closed with its code, as a refused socket is told.
func refuseSession(w http.ResponseWriter, perr *pusher.Error) {
	w.Header().Set("Content-Type", "application/javascript; charset=UTF-8")
	b := append([]byte("o\n"), appendLines(nil, []ws.Frame{
		{Op: ws.OpText, Data: pusher.ErrorFrame(perr)},
		{Op: ws.OpClose, Data: ws.ClosePayload(perr.Code, perr.Message)},
	})...)
	_, _ = w.Write(b)
}

// serveSend takes what the client sends: a JSON array of Pusher frames, each handled as a socket's
// frame is; an empty array is the client's ping (the request itself is the activity).
func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, id string) {
	h := s.sessions.get(id)
	if h == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	c := h.conn
	c.touch()
	limit := int64(2*s.cfg.MaxFrameBytes + 64) // a frame, escaped as a JSON string in an array
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	case int64(len(body)) > limit:
		c.sendError(s.frameTooLarge())
		http.Error(w, "message too large", http.StatusRequestEntityTooLarge)
		return
	}
	var frames []string
	if err := json.Unmarshal(body, &frames); err != nil {
		c.sendError(pusher.Errorf("Invalid xhr_send body: a JSON array of strings is expected"))
		http.Error(w, "the body must be a JSON array of strings", http.StatusBadRequest)
		return
	}
	h.readMu.Lock()
	// finished changes only under readMu (see end): a session that ended takes no more frames.
	for _, f := range frames {
		if h.finished {
			break
		}
		if len(f) > s.cfg.MaxFrameBytes {
			c.sendError(s.frameTooLarge())
			continue
		}
		c.receive([]byte(f))
	}
	h.readMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// established sends a newly admitted connection pusher:connection_established and counts it.
func (s *Server) established(c *Conn, r *http.Request) {
	// The first write of a socket also carries the handshake's answer; whatever was sent to the
	// connection meanwhile follows it. If it fails the connection is closed and cleans up.
	frame := pusher.ConnectionEstablishedFrame(c.id, max(1, int(s.cfg.ActivityTimeout/time.Second)))
	c.out.wrote(true, c.ws.Write(ws.Frame{Op: ws.OpText, Data: frame}))
	s.stats.ConnectionsAccepted.Add(1)
	c.app.stats.opened.Add(1)
	if s.Watching(c.app.ID) {
		s.Note(c.app.ID, FeedEvent{Kind: FeedConnect, SocketID: c.id, Detail: s.clientIP(r).String()})
	}
	if s.log.GetLevel() <= zerolog.DebugLevel {
		c.logger().Debug().Str("remote_addr", r.RemoteAddr).Msg("connection opened")
	}
}

// closeIdleSessions closes the sessions that have had no receiving request for HTTPSessionTimeout:
// their client is gone, and leaves as a dropped socket does.
func (s *Server) closeIdleSessions(now int64) {
	for _, h := range s.sessions.idle(now - int64(s.cfg.HTTPSessionTimeout)) {
		_ = h.Close()
	}
}

// openFrame is a session's first line: o, with this node's host name when it has one of its own.
func (s *Server) openFrame() []byte {
	if s.cfg.HTTPHostname == "" {
		return []byte("o\n")
	}
	b := append([]byte(`o{"hostname":`), pusher.AppendString(nil, s.cfg.HTTPHostname)...)
	return append(b, "}\n"...)
}
