package pusher

import "fmt"

// Codes carried by pusher:error and, for 4000–4299, by the WebSocket close that follows. The range
// tells clients how to reconnect: 4000–4099 not unchanged, 4100–4199 after a back-off, 4200–4299 at
// once. 4300–4399 are only ever sent inside pusher:error: pusher-js treats such a close code as
// "refused" and would stop reconnecting.
const (
	CodeTLSOnly             = 4000 // app only accepts TLS
	CodeAppNotFound         = 4001 // unknown app key
	CodeAppDisabled         = 4003 // app switched off
	CodeOverQuota           = 4004 // app at its connection limit
	CodePathNotFound        = 4005 // upgrade on a path other than /app/{key}
	CodeInvalidVersion      = 4006 // protocol parameter is not an integer
	CodeUnsupportedProtocol = 4007 // protocol outside 4–7
	CodeNoProtocol          = 4008 // protocol missing (strict mode only)
	CodeUnauthorized        = 4009 // connection not (or no longer) authorized
	CodeOverCapacity        = 4100 // server overloaded, or this client too slow to keep up
	CodeReconnect           = 4200 // reconnect now: graceful shutdown, rebalancing
	CodePongNotReceived     = 4201 // liveness probe unanswered
	CodeInactivity          = 4202 // closed after very long inactivity
	CodeClientEventLimit    = 4301 // client event rate limit hit (message only)
	CodeWatchlistLimit      = 4302 // watchlist over 100 ids (message only)
	CodeSubscribeLimit      = 4303 // Herald's: subscribe rate limit hit (message only)
)

// Subscription failure types and statuses sent in pusher:subscription_error, matching what pusher-js
// itself emits when an auth endpoint fails.
const (
	TypeAuthError      = "AuthError"
	TypeLimitReached   = "LimitReached"
	TypeInvalidChannel = "InvalidChannel"
)

// Error is a protocol failure. The same value answers a WebSocket client (pusher:error, plus a close
// when Code is in 4000–4299 and, for subscriptions, a pusher:subscription_error) and a REST caller
// (Status and Message).
type Error struct {
	// Code is the pusher:error code; 0 is sent as null, the code of non-fatal problems.
	Code int
	// Message is shown to the developer. It never contains a secret or an expected signature.
	Message string
	// Status is the HTTP status for REST answers and pusher:subscription_error; 0 means 400.
	Status int
	// Type classifies a failed subscription (TypeAuthError, …); empty means TypeInvalidChannel.
	Type string
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return e.Message
	}
	return fmt.Sprintf("%d: %s", e.Code, e.Message)
}

// Closes reports whether the error ends the connection: only 4000–4299 do.
func (e *Error) Closes() bool { return e.Code >= 4000 && e.Code < 4300 }

// HTTPStatus is the status a REST answer carries for this error.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return 400
	}
	return e.Status
}

// SubscriptionType is the type sent in pusher:subscription_error.
func (e *Error) SubscriptionType() string {
	if e.Type == "" {
		return TypeInvalidChannel
	}
	return e.Type
}

// Errorf returns a non-fatal protocol error (code null) with HTTP status 400.
func Errorf(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// CloseError returns a fatal error with a 4000–4299 code.
func CloseError(code int, message string) *Error { return &Error{Code: code, Message: message} }

// AuthError returns a failed-authorization error: code null, status 401, type AuthError.
func AuthError(message string) *Error {
	return &Error{Message: message, Status: 401, Type: TypeAuthError}
}

// LimitError returns a limit-exceeded error: code null, the given status, type LimitReached.
func LimitError(status int, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Status: status, Type: TypeLimitReached}
}
