package auth

// SignWebhook returns the X-Pusher-Signature value for a webhook body: the
// lowercase hex HMAC-SHA256 of the exact bytes sent. Server SDKs recompute it
// over the raw body they receive, so the body must be signed after any
// per-endpoint filtering and never re-encoded afterwards.
func SignWebhook(secret string, body []byte) string {
	return signBytes(secret, body)
}
