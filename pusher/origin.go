package pusher

import (
	"fmt"
	"strings"
)

// OriginAllowed reports whether a WebSocket handshake's Origin header passes the app's
// AllowedOrigins. A pattern is an exact origin ("https://shop.example"), a host ("shop.example":
// any scheme and port), a wildcard host ("*.example.com": its subdomains, not example.com itself,
// with or without a scheme) or "*". Comparison ignores case. An empty list allows every origin,
// and so does a handshake without an Origin header: browsers always send one, and the allowlist
// exists to keep other sites' pages off the app's key, not the app's own servers and mobile SDKs.
func (a *App) OriginAllowed(origin string) bool {
	if len(a.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	scheme, hostPort, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	host := hostPort
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.Contains(hostPort[i:], "]") {
		host = hostPort[:i]
	}
	for _, p := range a.AllowedOrigins {
		p = strings.ToLower(p)
		if p == "*" || p == origin {
			return true
		}
		pScheme, pHost, hasScheme := strings.Cut(p, "://")
		if !hasScheme {
			pScheme, pHost = "", p
		}
		if hasScheme && pScheme != scheme {
			continue
		}
		if suffix, wild := strings.CutPrefix(pHost, "*."); wild {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if !hasScheme && (pHost == host || pHost == hostPort) {
			return true
		}
	}
	return false
}

// validOriginPattern refuses a pattern that could never match, so a typo fails at start.
func validOriginPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty pattern")
	case strings.ContainsAny(p, " /") && !strings.Contains(p, "://"):
		return fmt.Errorf("%q is neither an origin (https://host) nor a host", p)
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("%q: an origin has no path (remove the trailing /)", p)
	}
	if p != "*" && strings.Contains(p, "*") {
		_, host, hasScheme := strings.Cut(p, "://")
		if !hasScheme {
			host = p
		}
		if !strings.HasPrefix(host, "*.") || strings.Count(host, "*") > 1 {
			return fmt.Errorf("%q: a wildcard stands for subdomains only, as in *.example.com", p)
		}
	}
	return nil
}
