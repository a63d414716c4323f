// Package console is Herald's debug console: a page at /console where a person signed in with an
// app's id and secret (or the admin token, for every app) watches the app live, on every node of a
// cluster: its connections, its channels with their subscribers and presence members, and a stream of
// what happens (connections, subscriptions, publishes, client events, errors sent to clients,
// webhooks), and publishes events through the normal publish path.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary. It reads the app's feed (see
// channels.Server.Watch) over Server-Sent Events, so watching costs a goroutine and a bounded queue
// per open page, and nothing while nobody watches. Sessions are signed cookies, not server state, so
// any node of a cluster accepts a session another node started.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/herald-rt/herald/channels"
	"github.com/herald-rt/herald/pusher"
)

//go:embed static
var static embed.FS

// Server is what the console reads and does; *channels.Server is one.
type Server interface {
	AppIDs() []string
	Secret(appID string) (string, bool)
	Watch(ctx context.Context, appID string) (*channels.Watch, error)
	ListChannels(ctx context.Context, appID string) ([]channels.ChannelInfo, error)
	Members(ctx context.Context, appID, channel string) (channels.Roster, error)
	Trigger(ctx context.Context, appID, channel, event, data string) error
	ClientIP(r *http.Request) netip.Addr
}

// Config configures a Console. Every zero value means the documented default.
type Config struct {
	// Server is the node the console shows and publishes through. Required.
	Server Server
	// PathPrefix also serves the console under this prefix, as the server's routes are.
	PathPrefix string
	// AdminToken signs a person in for every app. Empty: only app id and secret sign in.
	AdminToken string
	// SessionTTL is how long a sign-in lasts. Default 12 h.
	SessionTTL time.Duration
	// MaxWatchers bounds the pages watching at once on this node; more get 503. Default 32.
	MaxWatchers int
	// SnapshotEvery is how often an open page gets the app's channels and members. Default 2 s.
	SnapshotEvery time.Duration
	// Logger receives sign-in failures and stream errors. Nil: nothing is logged.
	Logger *zerolog.Logger
	// Now is the clock sessions are checked against. Nil: time.Now.
	Now func() time.Time
}

// Console serves the debug console.
type Console struct {
	// Static after New.
	cfg      Config
	log      zerolog.Logger
	srv      Server
	watchers chan struct{} // a token per page watching now
	failures failures      // failed sign-ins by address
}

// New returns a console for cfg.
func New(cfg Config) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxWatchers <= 0 {
		cfg.MaxWatchers = 32
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("component", "console").Logger()
	}
	return &Console{cfg: cfg, log: log, srv: cfg.Server, watchers: make(chan struct{}, cfg.MaxWatchers),
		failures: failures{byAddr: make(map[netip.Addr]*bucket)}}
}

// Wrap serves the console at /console (and under the path prefix), and hands every other request
// to next untouched: the WebSocket routes must keep their hijackable writer.
func (c *Console) Wrap(next http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Route("/console", c.routes)
	if p := strings.TrimSuffix(c.cfg.PathPrefix, "/"); p != "" {
		r.Route(p+"/console", c.routes)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c.mine(req.URL.Path) {
			r.ServeHTTP(w, req)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// mine reports whether a path is the console's.
func (c *Console) mine(path string) bool {
	under := func(base string) bool {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	if under("/console") {
		return true
	}
	p := strings.TrimSuffix(c.cfg.PathPrefix, "/")
	return p != "" && under(p+"/console")
}

func (c *Console) routes(r chi.Router) {
	assets, _ := fs.Sub(static, "static")
	r.Get("/", func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasSuffix(req.URL.Path, "/") {
			http.Redirect(w, req, req.URL.Path+"/", http.StatusFound)
			return
		}
		securityHeaders(w)
		http.ServeFileFS(w, req, assets, "index.html")
	})
	r.Get("/static/*", func(w http.ResponseWriter, req *http.Request) {
		name := chi.URLParam(req, "*")
		if !fs.ValidPath(name) || name == "." {
			http.NotFound(w, req)
			return
		}
		securityHeaders(w)
		http.ServeFileFS(w, req, assets, name)
	})
	r.Route("/api", func(r chi.Router) {
		r.Use(noStore)
		r.Post("/signin", c.serveSignin)
		r.Post("/signout", c.serveSignout)
		r.Get("/session", c.serveSession)
		r.Route("/apps/{appID}", func(r chi.Router) {
			r.Use(c.requireApp)
			r.Get("/stream", c.serveStream)
			r.Post("/events", c.servePublish)
		})
	})
}

// securityHeaders keep the page from being framed or fed foreign scripts.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// servePublish triggers an event through the server's publish path.
func (c *Console) servePublish(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	var req struct {
		Channel string `json:"channel"`
		Event   string `json:"event"`
		Data    string `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	appID := chi.URLParam(r, "appID")
	err := c.srv.Trigger(r.Context(), appID, req.Channel, req.Event, req.Data)
	var perr *pusher.Error
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case errors.As(err, &perr):
		writeError(w, perr.HTTPStatus(), perr.Message)
	case errors.Is(err, channels.ErrUnknownApp):
		writeError(w, http.StatusNotFound, "unknown app id")
	default:
		c.log.Error().Err(err).Str("app_id", appID).Msg("console publish failed")
		writeError(w, http.StatusServiceUnavailable, "publish failed, try again: "+err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}
