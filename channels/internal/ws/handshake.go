package ws

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// The opening handshake (RFC 6455 §4.2.2). No extension is ever agreed, so browsers that offer
// permessage-deflate send plain frames.

// websocketGUID is the fixed string of the Sec-WebSocket-Accept computation.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Accept checks the upgrade request and takes the connection from net/http. The 101 answer is not
// written yet: it goes out with the socket's first write, in the same packet as the first frames. On
// failure Accept has answered the request with the HTTP error and returns nil.
func Accept(w http.ResponseWriter, r *http.Request, o Options) *Socket {
	key := r.Header.Get("Sec-WebSocket-Key")
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "WebSocket upgrade requires GET", http.StatusMethodNotAllowed)
		return nil
	case !r.ProtoAtLeast(1, 1):
		http.Error(w, "WebSocket upgrade requires HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return nil
	case !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket"):
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket: send an upgrade request", http.StatusUpgradeRequired)
		return nil
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version: use 13", http.StatusUpgradeRequired)
		return nil
	case !validKey(key):
		http.Error(w, "invalid Sec-WebSocket-Key", http.StatusBadRequest)
		return nil
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take over this connection", http.StatusInternalServerError)
		return nil
	}
	// An embedding http.Server's ReadTimeout or WriteTimeout would otherwise end every connection.
	if err := nc.SetDeadline(time.Time{}); err != nil {
		_ = nc.Close()
		return nil
	}
	// Bytes the client sent after its request (none, for every Pusher client) are already in net/http's
	// reader; they start the socket's buffer.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	if len(pending) > readBufferSize {
		_ = nc.Close()
		return nil
	}
	answer := make([]byte, 0, 256)
	answer = append(answer, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	answer = append(answer, acceptKey(key)...)
	if p := selectSubprotocol(r.Header, o.Subprotocols); p != "" {
		answer = append(answer, "\r\nSec-WebSocket-Protocol: "...)
		answer = append(answer, p...)
	}
	answer = append(answer, "\r\n\r\n"...)
	return newSocket(nc, pending, answer, o)
}

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool { return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") }

// validKey accepts a base64 encoding of 16 bytes, as §4.1 requires of clients.
func validKey(key string) bool {
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerHasToken reports whether a comma-separated header holds token, ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// selectSubprotocol picks the first subprotocol the client offers that the server speaks, and
// answers it as the client spelt it.
func selectSubprotocol(h http.Header, supported []string) string {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for offered := range strings.SplitSeq(v, ",") {
			offered = strings.TrimSpace(offered)
			for _, p := range supported {
				if strings.EqualFold(offered, p) {
					return offered
				}
			}
		}
	}
	return ""
}
