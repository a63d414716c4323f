package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token-based authorization. An app's backend mints a short-lived JWT naming a
// user and the channels that user may join; a front end with no auth route of
// its own sends it as "Authorization: Bearer <token>" to Herald's
// /apps/{app_id}/auth/channel and /apps/{app_id}/auth/user endpoints, which
// answer exactly as a pusher-js channelAuthorization / userAuthentication
// endpoint would. VerifyToken decides whether a token is good for an app;
// TokenClaims.AllowsChannel whether it admits a channel.
//
// The algorithm is pinned by the configured key, never read from the token: an
// HMAC secret accepts only HS256, an RSA public key only RS256, a P-256 ECDSA
// public key only ES256. "none", HS256 signed with a public key's bytes, and
// every other mix are refused before any signature is computed. Key-carrying
// headers (jwk, jku, x5u, x5c, kid) are ignored: Herald never fetches keys.

// Bounds on token verification.
const (
	// MaxTokenBytes is the longest token VerifyToken reads; longer ones are
	// refused before any decoding.
	MaxTokenBytes = 8 << 10
	// MaxTokenWatchlist is the most user ids a token's watchlist may hold,
	// Pusher's watchlist limit.
	MaxTokenWatchlist = 100
	// MaxTokenChannels is the most channel patterns a token may carry.
	MaxTokenChannels = 100
	// TokenLeeway is the clock skew tolerated between the minting backend and
	// Herald when checking exp, nbf and iat.
	TokenLeeway = 5 * time.Second
	// DefaultTokenMaxLifetime is how far exp may lie after iat (or, without
	// iat, after now) unless TokenKey.MaxLifetime says otherwise. A token cannot
	// be revoked before it expires, so a day bounds what a leaked one is worth.
	DefaultTokenMaxLifetime = 24 * time.Hour

	// minRSABits is the smallest RSA modulus accepted for RS256 (NIST SP 800-57).
	minRSABits = 2048
)

// Reasons a token is refused, as TokenError.Reason. They are short and stable,
// fit for a metrics label.
const (
	TokenReasonMissing     = "missing"        // no token at all
	TokenReasonTooLarge    = "too_large"      // over MaxTokenBytes
	TokenReasonMalformed   = "malformed"      // not a JWS compact token of JSON header and claims, a claim of the wrong type, or a claim given twice
	TokenReasonAlgorithm   = "algorithm"      // alg is not the one the app's key pins (none, HS/RS/ES confusion, unknown)
	TokenReasonSignature   = "signature"      // signature does not verify with the app's key
	TokenReasonNoExpiry    = "missing_exp"    // no exp claim
	TokenReasonExpired     = "expired"        // exp is past (beyond TokenLeeway)
	TokenReasonLifetime    = "lifetime"       // exp is further from iat (or now) than the maximum lifetime
	TokenReasonNotYetValid = "not_yet_valid"  // nbf or iat is in the future (beyond TokenLeeway)
	TokenReasonAudience    = "audience"       // aud missing or not naming this app
	TokenReasonSubject     = "subject"        // sub missing, empty or not a string
	TokenReasonClaims      = "claims"         // watchlist/channels of the wrong shape or over the limits
	TokenReasonChannel     = "channel_denied" // valid token, but its patterns do not admit the channel (403)
)

// TokenKey is how an app's tokens are verified: exactly one of HMACSecret or
// PublicKey is set, and it alone decides the accepted algorithm.
type TokenKey struct {
	// HMACSecret selects HS256: the app secret by default, or a dedicated key
	// (prefer 32 random bytes or more).
	HMACSecret []byte
	// PublicKey selects RS256 for an *rsa.PublicKey (at least 2048 bits) or
	// ES256 for an *ecdsa.PublicKey on P-256. See ParsePublicKeyPEM.
	PublicKey crypto.PublicKey
	// MaxLifetime is how far exp may lie after iat, or after now for a token
	// without iat (TokenLeeway added). Zero: DefaultTokenMaxLifetime.
	MaxLifetime time.Duration
}

// Validate reports whether k is usable: exactly one of HMACSecret and
// PublicKey set, a public key of a supported type and strength, and a
// MaxLifetime that is not negative. Call it
// when loading configuration; VerifyToken returns the same error (not a
// *TokenError) for a bad key.
func (k TokenKey) Validate() error {
	_, _, err := k.method()
	return err
}

// method returns the one signing method k accepts and the key to verify with.
func (k TokenKey) method() (jwt.SigningMethod, any, error) {
	switch {
	case k.MaxLifetime < 0:
		return nil, nil, fmt.Errorf("token key: negative MaxLifetime %s", k.MaxLifetime)
	case len(k.HMACSecret) > 0 && k.PublicKey != nil:
		return nil, nil, errors.New("token key: set either HMACSecret or PublicKey, not both")
	case len(k.HMACSecret) > 0:
		return jwt.SigningMethodHS256, k.HMACSecret, nil
	case k.PublicKey == nil:
		return nil, nil, errors.New("token key: neither HMACSecret nor PublicKey is set")
	}
	switch pub := k.PublicKey.(type) {
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			return nil, nil, errors.New("token key: empty RSA public key")
		}
		if n := pub.N.BitLen(); n < minRSABits {
			return nil, nil, fmt.Errorf("token key: RSA key of %d bits, at least %d required", n, minRSABits)
		}
		return jwt.SigningMethodRS256, pub, nil
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve != elliptic.P256() {
			return nil, nil, errors.New("token key: ECDSA key must be on curve P-256 (ES256)")
		}
		if _, err := pub.ECDH(); err != nil { // rejects points off the curve
			return nil, nil, fmt.Errorf("token key: invalid ECDSA public key: %w", err)
		}
		return jwt.SigningMethodES256, pub, nil
	}
	return nil, nil, fmt.Errorf("token key: unsupported public key type %T (want RSA or ECDSA P-256)", k.PublicKey)
}

// ParsePublicKeyPEM reads an RSA or ECDSA P-256 public key for TokenKey from
// PEM: a PKIX "PUBLIC KEY" block, a PKCS#1 "RSA PUBLIC KEY" block, or an X.509
// "CERTIFICATE" (its key only: validity and chain are not checked). The first
// such block is used and others, like openssl's "EC PARAMETERS", are skipped.
// A private key is refused: Herald needs only the public half.
func ParsePublicKeyPEM(pemBytes []byte) (crypto.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("parse public key: no PEM public key or certificate found")
		}
		var (
			pub crypto.PublicKey
			err error
		)
		switch {
		case block.Type == "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case block.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case block.Type == "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, errors.New("parse public key: PEM holds a private key; configure the public key only")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse public key: %s block: %w", block.Type, err)
		}
		if err := (TokenKey{PublicKey: pub}).Validate(); err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		return pub, nil
	}
}

// TokenClaims is what Herald reads from a token.
//
// VerifyToken guarantees UserID is non-empty, Watchlist and Channels are within
// MaxTokenWatchlist and MaxTokenChannels, and every pattern is valid. It does
// not bound UserInfo or the length of UserID: those limits are per app (Pusher:
// user_info ≤ 1 KB, user_id ≤ 128 chars) and are enforced by the caller, which
// builds channel_data / user_data from them.
type TokenClaims struct {
	UserID    string          // "sub": required, a non-empty JSON string
	UserInfo  json.RawMessage // "user_info": optional, any JSON; nil when absent or null
	Watchlist []string        // "watchlist": optional user ids, at most MaxTokenWatchlist
	// Channels ("channels") are the patterns the holder may subscribe to: an
	// exact channel name, or a prefix ending in '*'. Empty admits no channel.
	// See AllowsChannel.
	Channels []string

	// Registered claims. NewToken sets Audience, ExpiresAt and IssuedAt itself.
	Audience  []string  // "aud": always contains the app id after VerifyToken
	ExpiresAt time.Time // "exp": required
	IssuedAt  time.Time // "iat": zero when absent
	NotBefore time.Time // "nbf": zero when absent
	Issuer    string    // "iss": informational, not checked
	ID        string    // "jti": informational; tokens are not single-use, they work until exp
}

// TokenError is a refused token. Status is 401 (missing, malformed, bad
// signature, wrong algorithm, expired, not yet valid, wrong app, bad claims) or
// 403 (valid token whose patterns do not admit the channel, from
// CheckChannel). Reason is one of the TokenReason constants. Message says what
// is wrong, fit for the response body: it never contains key material or the
// token's signature.
type TokenError struct {
	Status  int
	Reason  string
	Message string
}

func (e *TokenError) Error() string { return e.Message }

func tokenErr(status int, reason, format string, args ...any) *TokenError {
	return &TokenError{Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func unauthorized(reason, format string, args ...any) *TokenError {
	return tokenErr(http.StatusUnauthorized, reason, format, args...)
}

// BearerToken returns the token of an Authorization header value such as
// "Bearer <token>". The scheme matches in any case ("bearer", "BEARER": RFC
// 9110 §11.1 makes auth schemes case-insensitive), and any number of spaces may
// separate it from the token (§11.4: 1*SP); whitespace around the value is
// ignored. ok is false for another scheme or an empty token.
func BearerToken(authorization string) (token string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.Trim(authorization, " \t"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(rest, " ")
	return token, token != ""
}

// VerifyToken checks a bearer token for app appID at time now and returns its
// claims. token is the credentials part of "Authorization: Bearer <token>", as
// BearerToken returns it. It checks, in order: size (at most MaxTokenBytes, refused unread
// beyond), structure, algorithm (the one key pins), signature, exp (required,
// must be after now - TokenLeeway), nbf and iat (if present, not after now +
// TokenLeeway), aud (must contain appID), no "crit" header, sub (a non-empty
// string), then watchlist and channels (arrays of strings within the limits,
// patterns well formed). Whether the token admits a channel is a separate
// question: see AllowsChannel and CheckChannel.
//
// A refused token is a *TokenError with Status 401. A bad key or an empty
// appID is a configuration error, returned as a plain error: answer 500.
func VerifyToken(token, appID string, key TokenKey, now time.Time) (*TokenClaims, error) {
	method, verifyKey, err := key.method()
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if appID == "" {
		return nil, errors.New("verify token: empty app id")
	}
	switch {
	case token == "":
		return nil, unauthorized(TokenReasonMissing, "no bearer token")
	case len(token) > MaxTokenBytes:
		return nil, unauthorized(TokenReasonTooLarge, "token is %d bytes, over the %d-byte limit", len(token), MaxTokenBytes)
	}

	var wc wireClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{method.Alg()}),
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(appID),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	parsed, err := parser.ParseWithClaims(token, &wc, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused other algorithms; checking again
		// here keeps the key from ever meeting a method it was not pinned to.
		if t.Method == nil || t.Method.Alg() != method.Alg() {
			return nil, errors.New("algorithm mismatch")
		}
		return verifyKey, nil
	})
	if err != nil {
		return nil, refusal(err, parsed, &wc, key.maxLifetime(), method.Alg(), appID, now)
	}
	if terr := wc.checkLifetime(key.maxLifetime(), now); terr != nil {
		return nil, terr
	}
	if _, ok := parsed.Header["crit"]; ok {
		// RFC 7515 §4.1.11: critical extensions must be understood; we know none.
		return nil, unauthorized(TokenReasonMalformed, "token header has a crit parameter; no JWS extensions are supported")
	}
	c, terr := wc.claims()
	if terr != nil {
		return nil, terr
	}
	return c, nil
}

// refusal turns a golang-jwt error into a TokenError, reporting the first
// failed check in VerifyToken's order.
func refusal(err error, parsed *jwt.Token, wc *wireClaims, maxLifetime time.Duration, wantAlg, appID string, now time.Time) *TokenError {
	var shape *claimShapeError
	lifetime := wc.checkLifetime(maxLifetime, now)
	switch {
	case errors.As(err, &shape):
		return unauthorized(TokenReasonMalformed, "malformed token: %s", shape.msg)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized(TokenReasonMalformed, "malformed token: %s", malformedCause(err))
	case parsed == nil:
		return unauthorized(TokenReasonMalformed, "malformed token")
	case parsed.Method == nil || parsed.Method.Alg() != wantAlg:
		alg, ok := parsed.Header["alg"].(string)
		if !ok {
			return unauthorized(TokenReasonAlgorithm, "token header has no alg; this app accepts %s tokens only", wantAlg)
		}
		return unauthorized(TokenReasonAlgorithm, "token algorithm %q is not accepted; this app accepts %s tokens only", clip(alg, 32), wantAlg)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized(TokenReasonSignature, "token signature is invalid: not signed with this app's %s key", wantAlg)
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return unauthorized(TokenReasonMalformed, "token could not be verified")
	case wc.ExpiresAt == nil:
		return unauthorized(TokenReasonNoExpiry, "token has no exp claim; tokens must expire")
	case lifetime != nil:
		return lifetime
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized(TokenReasonExpired, "token expired at %s (server time %s, leeway %s)",
			stamp(wc.ExpiresAt.Time), stamp(now), TokenLeeway)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized(TokenReasonNotYetValid, "token is not valid before %s (nbf; server time %s, leeway %s)",
			stamp(wc.NotBefore.Time), stamp(now), TokenLeeway)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized(TokenReasonNotYetValid, "token is issued in the future at %s (iat; server time %s, leeway %s)",
			stamp(wc.IssuedAt.Time), stamp(now), TokenLeeway)
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if len(wc.Audience) == 0 {
			return unauthorized(TokenReasonAudience, "token has no aud claim; it must name app %q", appID)
		}
		return unauthorized(TokenReasonAudience, "token audience does not include app %q; it was minted for another app", appID)
	}
	return unauthorized(TokenReasonClaims, "token claims are invalid")
}

// malformedCause is golang-jwt's description of a malformed token, such as
// "could not base64 decode header", without the nested decoder detail (Go type
// names, echoed input).
func malformedCause(err error) string {
	msg := strings.TrimPrefix(err.Error(), jwt.ErrTokenMalformed.Error()+": ")
	msg, _, _ = strings.Cut(msg, ": ")
	if msg == "could not JSON decode claim" {
		msg += " (want an object with numeric exp/nbf/iat, aud a string or array of strings, iss and jti strings)"
	}
	return clip(msg, 200)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// clip bounds text echoed from a token, so a response never grows with it.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// AllowsChannel reports whether the token's patterns admit channel. A pattern
// admits a channel it equals byte for byte, or, if it ends in '*', any channel
// starting with the text before the '*' (that prefix itself included):
// "presence-room-*" admits "presence-room-7" but not "presence-roomx", and
// "private-*" also admits every "private-encrypted-" channel. "*" alone admits
// every channel: it is as powerful as the app secret for subscriptions, so mint
// it only for trusted users. Names starting with '#' (such as
// "#server-to-user-42") are admitted only by an exact pattern, never by '*'.
func (c *TokenClaims) AllowsChannel(channel string) bool {
	if channel == "" {
		return false
	}
	for _, p := range c.Channels {
		if p == channel {
			return true
		}
		prefix, wild := strings.CutSuffix(p, "*")
		if wild && channel[0] != '#' && strings.HasPrefix(channel, prefix) {
			return true
		}
	}
	return false
}

// CheckChannel is AllowsChannel as an error: nil when the token admits channel,
// otherwise a 403 *TokenError with reason TokenReasonChannel.
func (c *TokenClaims) CheckChannel(channel string) error {
	if c.AllowsChannel(channel) {
		return nil
	}
	return tokenErr(http.StatusForbidden, TokenReasonChannel, "token does not allow channel %q", clip(channel, 200))
}

// NewToken mints an HS256 token for app appID, for Go backends, tests and docs.
// It encodes claims' UserID, UserInfo, Watchlist, Channels, Issuer, ID and
// NotBefore (if set), with aud = appID, iat = now and exp = now + ttl (whole
// seconds). Keep ttl short, minutes not days: a token cannot be revoked before
// exp. Claims VerifyToken would refuse are refused here too.
func NewToken(appID string, secret []byte, claims TokenClaims, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case appID == "":
		return "", errors.New("new token: empty app id")
	case len(secret) == 0:
		return "", errors.New("new token: empty secret")
	case ttl < time.Second:
		return "", fmt.Errorf("new token: ttl %s, at least 1s required", ttl)
	}
	if err := claims.check(); err != nil {
		return "", fmt.Errorf("new token: %s", err.Message)
	}
	wc := wireClaims{
		Audience:  jwt.ClaimStrings{appID},
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		IssuedAt:  jwt.NewNumericDate(now),
		Issuer:    claims.Issuer,
		ID:        claims.ID,
		UserInfo:  claims.UserInfo,
	}
	if !claims.NotBefore.IsZero() {
		wc.NotBefore = jwt.NewNumericDate(claims.NotBefore)
	}
	var err error
	if wc.Subject, err = json.Marshal(claims.UserID); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	if len(claims.Watchlist) > 0 {
		if wc.Watchlist, err = json.Marshal(claims.Watchlist); err != nil {
			return "", fmt.Errorf("new token: %w", err)
		}
	}
	if len(claims.Channels) > 0 {
		if wc.Channels, err = json.Marshal(claims.Channels); err != nil {
			return "", fmt.Errorf("new token: %w", err)
		}
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &wc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	if len(token) > MaxTokenBytes {
		return "", fmt.Errorf("new token: token is %d bytes, over the %d-byte limit", len(token), MaxTokenBytes)
	}
	return token, nil
}

// check enforces what VerifyToken guarantees about the Herald-specific claims.
func (c *TokenClaims) check() *TokenError {
	if c.UserID == "" {
		return unauthorized(TokenReasonSubject, "token sub (the user id) is missing or empty")
	}
	if len(c.UserInfo) > 0 && !json.Valid(c.UserInfo) {
		return unauthorized(TokenReasonMalformed, "token user_info is not valid JSON")
	}
	if n := len(c.Watchlist); n > MaxTokenWatchlist {
		return unauthorized(TokenReasonClaims, "token watchlist has %d user ids, over the limit of %d", n, MaxTokenWatchlist)
	}
	if n := len(c.Channels); n > MaxTokenChannels {
		return unauthorized(TokenReasonClaims, "token channels has %d patterns, over the limit of %d", n, MaxTokenChannels)
	}
	for i, p := range c.Channels {
		if p == "" {
			return unauthorized(TokenReasonClaims, "token channels[%d] is empty", i)
		}
		if star := strings.IndexByte(p, '*'); star >= 0 && star != len(p)-1 {
			return unauthorized(TokenReasonClaims, "token channels[%d] %q has a '*' before its end; '*' is only allowed as the last character", i, clip(p, 200))
		}
	}
	return nil
}

// wireClaims is the JSON payload of a token. sub, watchlist and channels stay
// raw until the signature is verified, so a wrongly typed value is reported as
// such instead of as a malformed token.
type wireClaims struct {
	Subject   json.RawMessage  `json:"sub,omitempty"`
	Audience  jwt.ClaimStrings `json:"aud,omitempty"`
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	Issuer    string           `json:"iss,omitempty"`
	ID        string           `json:"jti,omitempty"`
	UserInfo  json.RawMessage  `json:"user_info,omitempty"`
	Watchlist json.RawMessage  `json:"watchlist,omitempty"`
	Channels  json.RawMessage  `json:"channels,omitempty"`

	// exp and iat in seconds as written, for the lifetime check: far
	// enough from now, a jwt.NumericDate overflows.
	exp, iat       float64
	hasExp, hasIat bool
}

// claimNames are the claims wireClaims decodes. encoding/json matches object
// keys to them case-insensitively, so "aud" and "AUD" are the same claim.
var claimNames = []string{"sub", "aud", "exp", "nbf", "iat", "iss", "jti", "user_info", "watchlist", "channels"}

// claimShapeError is a payload Herald refuses before decoding it: a claim
// given twice, or a time claim that is not a JSON number.
type claimShapeError struct{ msg string }

func (e *claimShapeError) Error() string { return e.msg }

// UnmarshalJSON refuses a member given twice, which a decoder would settle by
// keeping the last (so {"aud":"other","aud":"app-1"} passed for app-1 with the
// first never checked; RFC 7519 §4 lets a parser refuse duplicates, and Herald
// does), and exp, nbf or iat given as strings, which jwt.NumericDate would
// otherwise parse ("1767272400"; RFC 7519 §2 makes a NumericDate a number).
func (w *wireClaims) UnmarshalJSON(b []byte) error {
	if err := w.scan(b); err != nil {
		return err
	}
	type plain wireClaims // the same fields without this method
	return json.Unmarshal(b, (*plain)(w))
}

// scan walks the payload's top-level members once, checking what
// UnmarshalJSON promises and noting exp and iat. A payload that is not a JSON
// object is left for the decoder to report.
func (w *wireClaims) scan(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool, len(claimNames)) // by claimName, or the key itself for others
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		key, _ := tok.(string)
		name := claimName(key)
		if name == "" {
			name = key
		}
		if seen[name] {
			return &claimShapeError{fmt.Sprintf("claim %q appears twice; each claim must be given once", clip(name, 32))}
		}
		seen[name] = true
		switch name {
		case "exp", "nbf", "iat":
			if isNull(value) {
				continue
			}
			if value[0] != '-' && (value[0] < '0' || value[0] > '9') {
				return &claimShapeError{fmt.Sprintf("claim %q must be a number of seconds since 1970 (a NumericDate), not %s", name, jsonKind(value))}
			}
			f, err := strconv.ParseFloat(string(value), 64)
			if err != nil {
				return &claimShapeError{fmt.Sprintf("claim %q is out of range", name)}
			}
			switch name {
			case "exp":
				w.exp, w.hasExp = f, true
			case "iat":
				w.iat, w.hasIat = f, true
			}
		}
	}
	return nil
}

// claimName is the claim key stands for, as encoding/json would match it, or
// "" for a key wireClaims ignores.
func claimName(key string) string {
	for _, n := range claimNames {
		if strings.EqualFold(key, n) {
			return n
		}
	}
	return ""
}

// maxLifetime is k.MaxLifetime or its default.
func (k TokenKey) maxLifetime() time.Duration {
	if k.MaxLifetime == 0 {
		return DefaultTokenMaxLifetime
	}
	return k.MaxLifetime
}

// checkLifetime refuses an exp more than max (plus TokenLeeway) after iat, or
// after now when the token has no iat. It compares seconds as written, so an
// exp in the year 292277026596 is a lifetime error, not an overflow.
func (w *wireClaims) checkLifetime(max time.Duration, now time.Time) *TokenError {
	if !w.hasExp {
		return nil
	}
	from := float64(now.UnixNano()) / 1e9
	if w.hasIat {
		from = w.iat
	}
	if w.exp-from <= (max + TokenLeeway).Seconds() {
		return nil
	}
	return unauthorized(TokenReasonLifetime, "token lifetime exceeds the %s maximum (token_max_lifetime)", shortDuration(max))
}

// shortDuration writes d without zero units: 24h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// The jwt.Claims methods, read by golang-jwt's validator. sub is checked by
// claims(), not by the validator.
func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt, nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt, nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return w.NotBefore, nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return "", nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return w.Audience, nil }

// claims decodes and checks the verified payload.
func (w *wireClaims) claims() (*TokenClaims, *TokenError) {
	c := &TokenClaims{
		Audience:  w.Audience,
		ExpiresAt: w.ExpiresAt.UTC(),
		Issuer:    w.Issuer,
		ID:        w.ID,
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.UTC()
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.UTC()
	}
	if sub := bytes.TrimSpace(w.Subject); len(sub) > 0 && sub[0] == '"' {
		if err := json.Unmarshal(sub, &c.UserID); err != nil {
			return nil, unauthorized(TokenReasonSubject, "token sub (the user id) is not a valid string")
		}
	} else if len(sub) > 0 && !isNull(sub) {
		return nil, unauthorized(TokenReasonSubject, "token sub (the user id) must be a JSON string, not %s", jsonKind(sub))
	}
	if !isNull(w.UserInfo) {
		c.UserInfo = w.UserInfo
	}
	var ok bool
	if c.Watchlist, ok = stringArray(w.Watchlist); !ok {
		return nil, unauthorized(TokenReasonClaims, "token watchlist must be an array of user id strings")
	}
	if c.Channels, ok = stringArray(w.Channels); !ok {
		return nil, unauthorized(TokenReasonClaims, "token channels must be an array of channel pattern strings")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// stringArray decodes an optional JSON array of strings; absent or null is nil.
func stringArray(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return nil, true
	}
	if raw[0] != '[' {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false
	}
	return out, true
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the type of a JSON value by its first byte, for messages.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
