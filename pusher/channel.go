package pusher

import (
	"strconv"
	"strings"
)

// Kind is what a channel's name prefix makes of it; it decides how a subscription is authorized and
// whether client events are allowed.
type Kind uint8

const (
	KindPublic       Kind = iota // anyone may subscribe
	KindPrivate                  // private-: signature over socket_id:channel
	KindEncrypted                // private-encrypted-: like private; data relayed untouched
	KindPresence                 // presence-: signature, plus member tracking
	KindServerToUser             // #server-to-user-<id>: only the socket signed in as <id>
)

// ServerToUserPrefix starts the channel a server SDK's sendToUser publishes to.
const ServerToUserPrefix = "#server-to-user-"

// kindPrefixes is tested in order: the longer prefixes first, each anchored at the start of the name
// (an unanchored test would wrongly make "foo-cache-bar" a cache channel).
var kindPrefixes = []struct {
	prefix string
	kind   Kind
	cached bool
}{
	{ServerToUserPrefix, KindServerToUser, false},
	{"private-encrypted-cache-", KindEncrypted, true},
	{"private-encrypted-", KindEncrypted, false},
	{"private-cache-", KindPrivate, true},
	{"private-", KindPrivate, false},
	{"presence-cache-", KindPresence, true},
	{"presence-", KindPresence, false},
	{"cache-", KindPublic, true},
}

// KindOf returns the kind of a channel and whether it is a cache channel.
func KindOf(name string) (kind Kind, cached bool) {
	for _, p := range kindPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.kind, p.cached
		}
	}
	return KindPublic, false
}

// NeedsSignature reports whether subscribing needs a signed auth string.
func (k Kind) NeedsSignature() bool {
	return k == KindPrivate || k == KindEncrypted || k == KindPresence
}

// AllowsClientEvents reports whether clients may send client- events on the channel. Encrypted
// channels are excluded: no SDK can produce such events and the server cannot check them.
func (k Kind) AllowsClientEvents() bool { return k == KindPrivate || k == KindPresence }

// ServerToUserID returns the user id of a #server-to-user- channel, or false for any other channel.
func ServerToUserID(name string) (string, bool) {
	if !strings.HasPrefix(name, ServerToUserPrefix) || len(name) == len(ServerToUserPrefix) {
		return "", false
	}
	return name[len(ServerToUserPrefix):], true
}

// ValidateChannelName checks the characters and length of a channel name a client subscribes to or a
// backend publishes to. Only the #server-to-user- form may start with '#'.
func ValidateChannelName(name string, maxLen int) *Error {
	if name == "" {
		return &Error{Message: "Channel name is missing", Type: TypeInvalidChannel}
	}
	if len(name) > maxLen {
		return &Error{Message: "Channel name too long: at most " + strconv.Itoa(maxLen) + " characters",
			Type: TypeInvalidChannel}
	}
	rest := name
	if id, ok := ServerToUserID(name); ok {
		rest = id
	}
	for i := 0; i < len(rest); i++ {
		if !channelByte[rest[i]] {
			return &Error{Message: "Invalid channel name '" + Truncate(name, 64) +
				"': allowed characters are A-Z a-z 0-9 _ - = @ , . ;", Type: TypeInvalidChannel}
		}
	}
	return nil
}

// channelByte marks the bytes allowed in channel names: A–Z a–z 0–9 _ - = @ , . ;
var channelByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "_-=@,.;" {
		t[c] = true
	}
	return t
}()

// Truncate shortens s to at most n bytes, so that messages quoting a client's input stay small
// whatever it sent.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
