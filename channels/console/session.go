package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/pusher"
)

// A session is a signed cookie, "a.<app id>.<expiry>.<mac>" for an app or "t..<expiry>.<mac>" for the
// admin token, the MAC keyed by the app's secret or the token. The server keeps no session state:
// every node of a cluster checks a cookie another node issued, and changing an app's secret (or the
// token) ends its sessions at once.
const cookieName = "herald_console"

// session is who a request is signed in as.
type session struct {
	admin bool
	appID string // for an app session
}

// may reports whether the session may watch and publish to the app.
func (s session) may(appID string) bool { return s.admin || s.appID == appID }

type sessionKey struct{}

func sessionFrom(r *http.Request) session { return r.Context().Value(sessionKey{}).(session) }

// sign makes a session cookie's value.
func sign(key, kind, appID string, expiry int64) string {
	payload := kind + "." + base64.RawURLEncoding.EncodeToString([]byte(appID)) + "." + strconv.FormatInt(expiry, 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("herald-console." + payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session reads and checks the request's cookie.
func (c *Console) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[1])
	expiry, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || err2 != nil || c.cfg.Now().Unix() >= expiry {
		return session{}, false
	}
	var key string
	var s session
	switch parts[0] {
	case "t":
		key, s = c.cfg.AdminToken, session{admin: true}
	case "a":
		var ok bool
		if key, ok = c.srv.Secret(string(id)); !ok {
			return session{}, false
		}
		s = session{appID: string(id)}
	}
	if key == "" || !hmac.Equal([]byte(sign(key, parts[0], string(id), expiry)), []byte(ck.Value)) {
		return session{}, false
	}
	return s, true
}

// requireApp lets through requests signed in for the app in the path: 401 without a session, 403
// for another app's.
func (c *Console) requireApp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.session(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "sign in first")
			return
		}
		if !s.may(chi.URLParam(r, "appID")) {
			writeError(w, http.StatusForbidden, "this session is for another app")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// serveSignin checks an app id and secret, or the admin token, and sets the session cookie. Failures
// are rate-limited by address and answered alike, whatever was wrong.
func (c *Console) serveSignin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	addr := c.srv.ClientIP(r)
	now := c.cfg.Now()
	if wait := c.failures.wait(addr, now); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "too many failed sign-ins, try again later")
		return
	}
	var req struct {
		AppID  string `json:"app_id"`
		Secret string `json:"secret"`
		Token  string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	expiry := now.Add(c.cfg.SessionTTL).Unix()
	var value string
	var s session
	switch {
	case req.Token != "" && c.cfg.AdminToken != "" &&
		subtle.ConstantTimeCompare([]byte(req.Token), []byte(c.cfg.AdminToken)) == 1:
		value, s = sign(c.cfg.AdminToken, "t", "", expiry), session{admin: true}
	case req.AppID != "" && req.Secret != "":
		if secret, ok := c.srv.Secret(req.AppID); ok && subtle.ConstantTimeCompare([]byte(req.Secret), []byte(secret)) == 1 {
			value, s = sign(secret, "a", req.AppID, expiry), session{appID: req.AppID}
		}
	}
	if value == "" {
		c.failures.fail(addr, now)
		c.log.Warn().Str("address", addr.String()).Str("app_id", pusher.Truncate(req.AppID, 64)).Bool("token", req.Token != "").
			Msg("console sign-in refused")
		writeError(w, http.StatusUnauthorized, "wrong app id and secret, or wrong token")
		return
	}
	http.SetCookie(w, c.cookie(r, value, int(c.cfg.SessionTTL/time.Second)))
	c.serveSessionOf(w, s)
}

// serveSignout clears the cookie.
func (c *Console) serveSignout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, "", -1))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// serveSession tells the page who it is signed in as and which apps it may open.
func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	s, ok := c.session(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "sign in first")
		return
	}
	c.serveSessionOf(w, s)
}

func (c *Console) serveSessionOf(w http.ResponseWriter, s session) {
	apps := []string{s.appID}
	if s.admin {
		apps = c.srv.AppIDs()
	}
	writeJSON(w, http.StatusOK, map[string]any{"admin": s.admin, "apps": apps})
}

// cookie is the session cookie: HttpOnly, SameSite=Strict, Secure over TLS, for the console's path.
func (c *Console) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	path := r.URL.Path[:strings.Index(r.URL.Path, "/console/api/")+len("/console")]
	return &http.Cookie{Name: cookieName, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")}
}

// sameOrigin refuses a state-changing request another site's page sent: its Origin, when a browser
// sets one, must name the host the request was sent to. The SameSite cookie already keeps the
// session off such requests; this also keeps a sign-in from being forced.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// failures rate-limits failed sign-ins per address: a bucket of failuresBurst, refilled one every
// failuresRefill. Addresses are forgotten once their bucket is full again; past maxAddresses
// tracked, new addresses share one bucket.
type failures struct {
	mu       sync.Mutex
	byAddr   map[netip.Addr]*bucket // guarded by mu
	overflow bucket                 // guarded by mu
}

type bucket struct {
	tokens float64
	at     time.Time
}

const (
	failuresBurst  = 5
	failuresRefill = 12 * time.Second // five a minute
	maxAddresses   = 10000
)

// refill brings b to now and reports its tokens.
func (b *bucket) refill(now time.Time) float64 {
	if b.at.IsZero() {
		b.tokens, b.at = failuresBurst, now
	}
	b.tokens = min(failuresBurst, b.tokens+float64(now.Sub(b.at))/float64(failuresRefill))
	b.at = now
	return b.tokens
}

func (f *failures) bucket(addr netip.Addr, now time.Time, create bool) *bucket {
	if b := f.byAddr[addr]; b != nil {
		return b
	}
	if !create {
		return nil
	}
	if len(f.byAddr) >= maxAddresses {
		for a, b := range f.byAddr {
			if b.refill(now) >= failuresBurst {
				delete(f.byAddr, a)
			}
		}
	}
	if len(f.byAddr) >= maxAddresses {
		return &f.overflow
	}
	b := &bucket{}
	f.byAddr[addr] = b
	return b
}

// wait is how long the address must wait before its next sign-in attempt; 0: it may try now.
func (f *failures) wait(addr netip.Addr, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bucket(addr, now, false)
	if b == nil && len(f.byAddr) >= maxAddresses {
		b = &f.overflow
	}
	if b == nil || b.refill(now) >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(failuresRefill))
}

// fail counts a failed sign-in.
func (f *failures) fail(addr netip.Addr, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bucket(addr, now, true)
	b.refill(now)
	b.tokens = max(0, b.tokens-1)
}
