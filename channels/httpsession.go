package channels

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/herald-rt/herald/channels/internal/ws"
	"github.com/herald-rt/herald/pusher"
)

// HTTP sessions: pusher-js's xhr_streaming and xhr_polling transports, for clients that cannot keep
// a WebSocket (a proxy strips Upgrade). A session is a connection like any other (the same Conn, send
// queue, liveness, presence, webhooks and quotas) over a transport of its own: what the server sends
// waits in the session's outbox, in SockJS framing, until a receiving request takes it (a stream
// that stays open, or a poll that ends with what it got); what the client sends arrives as xhr_send
// requests. An idle session holds no goroutine: only a receiving request in progress does.
//
// Framing, one line each: o (open, once per session), a[...] (Pusher frames as JSON strings), h
// (heartbeat: the server's liveness probe, which a streaming client answers), c[code,"reason"] (close).

// httpSession is a session's transport. Its fields are guarded by mu, but for the static ones and
// readMu, which serialises what the client sends (the connection's reader state).
type httpSession struct {
	// Static after creation.
	id   string // app key, server and session numbers: the session's URL path
	conn *Conn
	reg  *sessionRegistry

	readMu sync.Mutex // held while the client's frames are handled, and while the session finishes

	mu          sync.Mutex
	out         []byte    // lines no receiving request has taken yet
	recv        *receiver // the receiving request attached now; nil when none
	detachedAt  int64     // monotonic nanoseconds since no receiving request is attached
	closed      bool
	closeQueued bool // the close line is in out: once a receiving request has taken it, the session ends
	finished    bool // the connection has been told the session ended; written under readMu too (see end)
}

// receiver is one receiving request while it waits for lines.
type receiver struct {
	wake chan struct{} // one token: lines are waiting, or the session closed, or a newer request replaced this one
	gone bool          // replaced or the session closed: it ends; guarded by httpSession.mu
}

var (
	errSessionGone   = errors.New("http session: closed")
	errSessionBehind = errors.New("http session: client not taking what is sent")
)

// Write implements sink: frames become lines in the outbox, for the next receiving request. A
// client that leaves more than the send queue's bound waiting, taking nothing, is cut off as a slow
// consumer.
func (h *httpSession) Write(frames ...ws.Frame) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errSessionGone
	}
	h.out = appendLines(h.out, frames)
	for _, f := range frames {
		if f.Op == ws.OpClose && !h.closeQueued {
			h.closeQueued = true
			if h.recv == nil { // a poll on its way takes it; a client gone does not hold the close up
				time.AfterFunc(abandonGrace, func() { _ = h.Close() })
			}
		}
	}
	if len(h.out) > 2*h.conn.srv.cfg.MaxQueueBytes {
		return errSessionBehind
	}
	h.wakeReceiver()
	return nil
}

// TryWrite implements sink: a session's writes never wait.
func (h *httpSession) TryWrite(f ws.Frame) (bool, error) { return true, h.Write(f) }

// LingerClose implements sink: the session stays for grace, for the client to fetch the close
// frame, then closes.
func (h *httpSession) LingerClose(grace time.Duration) {
	time.AfterFunc(grace, func() { _ = h.Close() })
}

// Next and ParkIfIdle implement transport; a session's frames arrive through xhr_send, not a reader.
func (h *httpSession) Next(int, int) (ws.Message, error) { return ws.Message{}, io.EOF }
func (h *httpSession) ParkIfIdle(func()) bool            { return false }

// Close implements transport: the session ends, its receiving request with it, and the connection
// cleans up. Safe to call more than once, from any goroutine.
func (h *httpSession) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.wakeReceiver()
	h.mu.Unlock()
	h.reg.remove(h)
	go h.end(errSessionGone)
	return nil
}

// end finishes the connection once, as its reader would when the socket goes.
func (h *httpSession) end(err error) {
	h.readMu.Lock()
	defer h.readMu.Unlock()
	h.mu.Lock()
	done := h.finished
	h.finished = true
	h.mu.Unlock()
	if !done {
		h.conn.finish(err)
	}
}

// wakeReceiver tells the attached receiving request, if any, to look again. Called with mu held.
func (h *httpSession) wakeReceiver() {
	if h.recv != nil {
		select {
		case h.recv.wake <- struct{}{}:
		default:
		}
	}
}

// attach makes r the session's receiving request, ending the one before it.
func (h *httpSession) attach(r *receiver) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.recv != nil {
		h.recv.gone = true
		h.wakeReceiver()
	}
	h.recv = r
	return true
}

// detach ends r's turn, if it still has it. A request the client abandoned (it went away, or
// disconnected: pusher-js aborts its receiving request then) counts as idle since longer, so that the
// session ends abandonGrace later unless another receiving request comes (a stream reopened).
func (h *httpSession) detach(r *receiver, abandoned bool, timeout time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recv == r {
		h.recv = nil
		h.detachedAt = monotonic()
		if abandoned {
			h.detachedAt -= int64(max(0, timeout-abandonGrace))
		}
	}
}

// abandonGrace is how long a session whose client abandoned its receiving request waits for another.
const abandonGrace = time.Second

// take returns the lines waiting for r; end says r should end after writing them (replaced, or the
// session closed), and last that they carry the session's close line, after which it ends.
func (h *httpSession) take(r *receiver) (lines []byte, end, last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	lines, h.out = h.out, nil
	last = h.closeQueued && len(lines) > 0
	return lines, r.gone || h.closed, last
}

// putBack returns lines a receiving request could not write to the front of the outbox, for the
// next request (a stream the client had just replaced).
func (h *httpSession) putBack(lines []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out = append(lines, h.out...)
}

// idleSince reports since when no receiving request has been attached; zero while one is.
func (h *httpSession) idleSince() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recv != nil {
		return 0
	}
	return h.detachedAt
}

// appendLines encodes frames as SockJS lines: consecutive text frames as one a[...] line of JSON
// strings, a Ping as h (the liveness probe: a streaming client answers it, a polling one polls again),
// a close as c[code,"reason"].
func appendLines(b []byte, frames []ws.Frame) []byte {
	inArray := false
	for _, f := range frames {
		switch f.Op {
		case ws.OpText:
			if inArray {
				b = append(b, ',')
			} else {
				b = append(b, "a["...)
				inArray = true
			}
			b = pusher.AppendString(b, string(f.Data))
			continue
		case ws.OpPong:
			continue
		}
		if inArray {
			b = append(b, "]\n"...)
			inArray = false
		}
		switch f.Op {
		case ws.OpPing:
			b = append(b, "h\n"...)
		case ws.OpClose:
			b = appendCloseLine(b, f.Data)
		}
	}
	if inArray {
		b = append(b, "]\n"...)
	}
	return b
}

// appendCloseLine encodes a close payload (code, reason) as c[code,"reason"].
func appendCloseLine(b, payload []byte) []byte {
	code, reason := 1000, ""
	if len(payload) >= 2 {
		code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
	}
	b = append(b, "c["...)
	b = appendInt(b, code)
	b = append(b, ',')
	b = pusher.AppendString(b, reason)
	return append(b, "]\n"...)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// sessionRegistry finds sessions by id. It holds only live sessions, each a registered connection,
// so it is bounded by max_connections.
type sessionRegistry struct {
	mu   sync.Mutex
	byID map[string]*httpSession
}

func (r *sessionRegistry) get(id string) *httpSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// add registers h unless a session of that id exists, and reports whether it did.
func (r *sessionRegistry) add(h *httpSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[string]*httpSession)
	}
	if r.byID[h.id] != nil {
		return false
	}
	r.byID[h.id] = h
	return true
}

func (r *sessionRegistry) remove(h *httpSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[h.id] == h {
		delete(r.byID, h.id)
	}
}

// idle returns the sessions with no receiving request since before cutoff.
func (r *sessionRegistry) idle(cutoff int64) []*httpSession {
	r.mu.Lock()
	all := make([]*httpSession, 0, len(r.byID))
	for _, h := range r.byID {
		all = append(all, h)
	}
	r.mu.Unlock()
	var out []*httpSession
	for _, h := range all {
		if since := h.idleSince(); since != 0 && since < cutoff {
			out = append(out, h)
		}
	}
	return out
}
