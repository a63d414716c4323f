// Package auth computes and checks the signatures of the Pusher protocol.
//
// Every signature is the lowercase hex HMAC-SHA256 of a string, keyed by the app
// secret (Sign). The three kinds differ in what is signed and who checks it:
//
//   - Channel and user authorization (SignChannel, SignUser, VerifyChannel,
//     VerifyUser). The app's auth endpoint signs "socket_id:channel",
//     "socket_id:channel:channel_data" (presence) or "socket_id::user::user_data"
//     (sign-in) and hands the client "key:signature"; the client forwards it in
//     pusher:subscribe or pusher:signin and the server verifies it. Failures carry
//     Pusher's wording, fit to send back in a pusher:error.
//   - REST requests (SignRequest, VerifyRequest). Server SDKs sign
//     "METHOD\npath\ncanonical query" and send auth_key, auth_timestamp,
//     auth_version, body_md5 and auth_signature as query parameters; the server
//     checks the key, the clock skew, the body digest and the signature.
//   - Webhooks (SignWebhook). The server signs the exact body it posts and sends
//     the result in X-Pusher-Signature, so the receiving app can trust the events.
//
// Verification compares signatures in constant time, and no error ever contains
// the expected signature: messages show the string that should have been signed,
// which is what a developer needs to find a mismatch, never the value an attacker
// would need to forge one.
//
// The package takes strings and bytes and returns strings and errors; it does no
// I/O and keeps no state.
package auth
