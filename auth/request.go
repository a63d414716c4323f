package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxTimestampSkew is the accepted |now - auth_timestamp| window for REST
// requests. It bounds how long a captured request can be replayed and how far
// a client's clock may drift.
const MaxTimestampSkew = 600 * time.Second

// Bounds on what VerifyRequest will look at. Real SDK requests carry fewer than
// ten parameters and a few hundred bytes of query; anything past these is
// refused before parsing.
const (
	maxRawQuery = 8 << 10
	maxPath     = 8 << 10
	maxParams   = 100
)

// authVersion is the only auth_version Pusher has ever defined.
const authVersion = "1.0"

// Reasons a REST request fails authentication, as RequestError.Reason. They are
// short and stable, fit for a metrics label.
const (
	ReasonTooLarge    = "too_large"      // query, path or parameter count over the bounds
	ReasonAuthKey     = "auth_key"       // auth_key missing or not the app's
	ReasonTimestamp   = "auth_timestamp" // auth_timestamp missing, not an integer, or out of the skew window
	ReasonAuthVersion = "auth_version"   // auth_version present and not "1.0"
	ReasonBodyMD5     = "body_md5"       // body_md5 missing for a body, or not the body's MD5
	ReasonSignature   = "auth_signature" // auth_signature missing or wrong
)

// Request is what the verifier needs from an incoming REST request.
type Request struct {
	Method   string // e.g. "POST"
	Path     string // escaped path as received (r.URL.EscapedPath()), may carry a proxy prefix
	RawQuery string // r.URL.RawQuery, undecoded
	Body     []byte // raw body bytes
}

// RequestError is a failed REST authentication; every one maps to HTTP 401.
// Error returns a plain-text message for the response body that helps the
// developer find the mismatch (for a bad signature it shows the string to sign,
// as Pusher does) and never contains the expected signature.
type RequestError struct {
	Reason  string // one of the Reason constants
	Message string // plain-text explanation returned by Error
}

func (e *RequestError) Error() string {
	if e.Message == "" {
		return "Authentication failed: " + e.Reason
	}
	return e.Message
}

func reqErr(reason, format string, args ...any) *RequestError {
	return &RequestError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// SignRequest returns the query parameters for a signed REST request: a copy of
// params (may be nil) plus auth_key, auth_timestamp (now, unix seconds),
// auth_version=1.0, body_md5 (only when body is non-empty) and auth_signature.
// Entries of params named like those five, in any case, are replaced. path is
// the path the server will see after any proxy, e.g. "/apps/3/events". Encode
// the result with url.Values.Encode.
func SignRequest(key, secret, method, path string, params url.Values, body []byte, now time.Time) url.Values {
	signed := make(url.Values, len(params)+5)
	for k, vs := range params {
		switch strings.ToLower(k) {
		case "auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature":
			continue
		}
		signed[k] = append([]string(nil), vs...)
	}
	signed.Set("auth_key", key)
	signed.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	signed.Set("auth_version", authVersion)
	if len(body) > 0 {
		sum := md5.Sum(body)
		signed.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	q := newQuery(valuesParams(signed)).canonical()
	signed.Set("auth_signature", Sign(secret, strings.ToUpper(method)+"\n"+path+"\n"+q))
	return signed
}

// VerifyRequest authenticates a REST request for one app at time now; nil means
// valid. It checks, in order: auth_key is appKey; auth_timestamp is within
// MaxTimestampSkew of now; auth_version, if present, is 1.0; body_md5 is
// present for a non-empty body and, if present, is the MD5 of the raw body;
// auth_signature is the HMAC of "METHOD\npath\ncanonical query". SDKs sign the
// path starting at /apps/ even behind a prefix, and encode it differently, so
// the path is tried as received, from its first "/apps/", and unescaped.
// Queries over 8 KB or 100 parameters, and paths over 8 KB, are refused
// unread. Resolving the app from the path (404 when unknown) is the caller's
// job. Failures are *RequestError.
func VerifyRequest(r Request, appKey, appSecret string, now time.Time) error {
	if len(r.RawQuery) > maxRawQuery {
		return reqErr(ReasonTooLarge, "Query string too long to authenticate: the limit is %d bytes", maxRawQuery)
	}
	if len(r.Path) > maxPath {
		return reqErr(ReasonTooLarge, "Path too long to authenticate: the limit is %d bytes", maxPath)
	}
	ps, ok := parseRawQuery(r.RawQuery, maxParams)
	if !ok {
		return reqErr(ReasonTooLarge, "Too many query parameters to authenticate: the limit is %d", maxParams)
	}
	q := newQuery(ps)

	switch k, ok := q.get("auth_key"); {
	case !ok:
		return reqErr(ReasonAuthKey, "Missing auth_key")
	case k != appKey:
		return reqErr(ReasonAuthKey, "Invalid auth_key: %q is not a key of this app", k)
	}

	ts, ok := q.get("auth_timestamp")
	if !ok {
		return reqErr(ReasonTimestamp, "Missing auth_timestamp")
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return reqErr(ReasonTimestamp, "Invalid auth_timestamp: %q is not an integer number of seconds", ts)
	}
	skew := int64(MaxTimestampSkew / time.Second)
	if n := now.Unix(); t < n-skew || t > n+skew {
		return reqErr(ReasonTimestamp, "Timestamp expired: Given timestamp (%d) not within %ds of server time (%d)", t, skew, n)
	}

	if v, ok := q.get("auth_version"); ok && v != authVersion {
		return reqErr(ReasonAuthVersion, "Invalid auth_version: %q (only %s is supported)", v, authVersion)
	}

	bodyMD5, ok := q.get("body_md5")
	if !ok && len(r.Body) > 0 {
		return reqErr(ReasonBodyMD5, "Missing body_md5: a request with a body must send the lowercase hex MD5 of the body")
	}
	if ok {
		if sum := md5.Sum(r.Body); !hexEqual(sum[:], bodyMD5) {
			return reqErr(ReasonBodyMD5, "Invalid body_md5: the body received has MD5 %x, but you sent %q", sum, bodyMD5)
		}
	}

	sig, _ := q.get("auth_signature")
	return verifySignature(appSecret, strings.ToUpper(r.Method), r.Path, q.canonical(), sig)
}

// verifySignature checks sig against "method\npath\ncanonical" for each path
// the client may have signed, reusing one HMAC state and one buffer.
func verifySignature(secret, method, path, canonical, sig string) error {
	paths, n, shown := pathCandidates(path)
	mac := hmac.New(sha256.New, []byte(secret))
	buf := make([]byte, 0, len(method)+len(path)+len(canonical)+2)
	var sum [sha256.Size]byte
	for _, p := range paths[:n] {
		buf = append(buf[:0], method...)
		buf = append(buf, '\n')
		buf = append(buf, p...)
		buf = append(buf, '\n')
		buf = append(buf, canonical...)
		mac.Reset()
		mac.Write(buf)
		if hexEqual(mac.Sum(sum[:0]), sig) {
			return nil
		}
	}
	toSign := strings.ReplaceAll(method+"\n"+shown+"\n"+canonical, "\n", `\n`)
	return reqErr(ReasonSignature, "Invalid signature: you should have sent HmacSHA256Hex(\"%s\", your_secret_key), but you sent \"%s\"", toSign, sig)
}

// pathCandidates returns the n distinct paths a client may have signed for a
// request received at path: as received, from the first "/apps/" on (SDK path
// prefixes and reverse proxies), and the unescaped form of both. shown is the
// one an error message should display: the "/apps/" form SDKs sign when there
// is one.
func pathCandidates(path string) (paths [4]string, n int, shown string) {
	add := func(p string) {
		for _, q := range paths[:n] {
			if q == p {
				return
			}
		}
		paths[n] = p
		n++
	}
	add(path)
	shown = path
	if i := strings.Index(path, "/apps/"); i > 0 {
		shown = path[i:]
		add(shown)
	}
	if u, err := url.PathUnescape(path); err == nil {
		add(u)
		if i := strings.Index(u, "/apps/"); i > 0 {
			add(u[i:])
		}
	}
	return paths, n, shown
}
