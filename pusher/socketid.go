package pusher

import (
	"math/rand/v2"
	"strconv"
)

// NewSocketID returns a fresh socket id "<uint32>.<uint32>". Both halves are random so that ids are
// not guessable (a socket id lets a backend exclude a socket or sign for it); the caller still checks
// uniqueness among live connections.
func NewSocketID() string {
	b := make([]byte, 0, 21)
	b = strconv.AppendUint(b, uint64(rand.Uint32()), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(rand.Uint32()), 10)
	return string(b)
}

// ValidSocketID reports whether s has the form every server SDK checks, ^\d+\.\d+$.
func ValidSocketID(s string) bool {
	dot := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && dot < 0:
			dot = i
		case c < '0' || c > '9':
			return false
		}
	}
	return dot > 0 && dot < len(s)-1
}
