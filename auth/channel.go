package auth

import "strings"

// Pusher's client-facing texts for a rejected auth string. They travel back to
// the client in a pusher:error, so they keep Pusher's capitalised wording.
const (
	msgAuthRequired = "Auth info required to subscribe to "
	msgAuthFormat   = "Invalid format: auth must have the format key:signature"
	msgAuthKey      = "Invalid key in subscription auth data: '"
	msgAuthSig      = "Invalid signature: Expected HMAC SHA256 hex digest of "
)

// authError is a rejected channel or user authorization. Its text is meant for
// the client and never contains the expected signature.
type authError string

func (e authError) Error() string { return string(e) }

// SignChannel returns the "key:signature" auth string for a private or presence
// subscription, as an app's auth endpoint would. channelData == "" signs
// "socket_id:channel" (private channels, and presence for a signed-in user),
// otherwise "socket_id:channel:channel_data".
func SignChannel(key, secret, socketID, channel, channelData string) string {
	return key + ":" + Sign(secret, channelStringToSign(socketID, channel, channelData))
}

// SignUser returns the "key:signature" auth string for pusher:signin, signed over
// "socket_id::user::user_data".
func SignUser(key, secret, socketID, userData string) string {
	return key + ":" + Sign(secret, userStringToSign(socketID, userData))
}

// VerifyChannel checks the auth string a client sent to subscribe socketID to a
// private or presence channel. channelData is the exact channel_data string
// received ("" when absent); it is signed byte for byte and must never be
// re-serialised first. The signature is compared in constant time.
//
// A non-nil error's text is fit to send to the client: Pusher's wording for a
// missing auth, a malformed "key:signature", a wrong key, or a wrong signature
// (showing the string to sign and the signature received, never the expected
// one).
func VerifyChannel(key, secret, authString, socketID, channel, channelData string) error {
	if authString == "" {
		return authError(msgAuthRequired + channel)
	}
	return verifyAuth(key, secret, authString, channelStringToSign(socketID, channel, channelData))
}

// VerifyUser checks the auth string a client sent with pusher:signin against the
// exact user_data string received, in constant time. Errors are as for
// VerifyChannel.
func VerifyUser(key, secret, authString, socketID, userData string) error {
	return verifyAuth(key, secret, authString, userStringToSign(socketID, userData))
}

func channelStringToSign(socketID, channel, channelData string) string {
	if channelData == "" {
		return socketID + ":" + channel
	}
	return socketID + ":" + channel + ":" + channelData
}

func userStringToSign(socketID, userData string) string {
	return socketID + "::user::" + userData
}

// verifyAuth splits authString at its first ':' and checks the key, then the
// signature of toSign.
func verifyAuth(key, secret, authString, toSign string) error {
	gotKey, sig, ok := strings.Cut(authString, ":")
	if !ok {
		return authError(msgAuthFormat)
	}
	if gotKey != key {
		// Only the key part is echoed: a correct signature under a wrong key
		// must not come back in the message.
		return authError(msgAuthKey + gotKey + "'")
	}
	if sum := macSum(secret, []byte(toSign)); !hexEqual(sum[:], sig) {
		return authError(msgAuthSig + toSign + ", but got " + sig)
	}
	return nil
}
