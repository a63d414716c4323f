package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Sign returns the lowercase hex HMAC-SHA256 of msg keyed by secret. It is the
// one signature primitive behind channel auth, user sign-in, REST requests and
// webhooks.
func Sign(secret, msg string) string {
	return signBytes(secret, []byte(msg))
}

func signBytes(secret string, msg []byte) string {
	sum := macSum(secret, msg)
	return hex.EncodeToString(sum[:])
}

// macSum returns the raw HMAC-SHA256 of msg keyed by secret.
func macSum(secret string, msg []byte) (sum [sha256.Size]byte) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(msg)
	mac.Sum(sum[:0])
	return sum
}

// hexEqual reports whether text is the hex encoding of sum. Hex case is not
// significant: every SDK sends lowercase, and accepting uppercase gives nothing
// away. The decoded bytes are compared in constant time, so response timing
// never tells a client how much of a guessed signature was right.
func hexEqual(sum []byte, text string) bool {
	var buf [sha256.Size]byte
	if len(sum) > len(buf) || len(text) != 2*len(sum) {
		return false
	}
	for i := range sum {
		hi, ok1 := fromHex(text[2*i])
		lo, ok2 := fromHex(text[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		buf[i] = hi<<4 | lo
	}
	return hmac.Equal(sum, buf[:len(sum)])
}

// fromHex decodes one hex digit of either case.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
