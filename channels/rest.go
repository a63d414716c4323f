package channels

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// restRoutes mounts the REST API under /apps/{appID}: the signed calls, each authenticated first, and
// the token authorization endpoints, which carry their own credential.
func (s *Server) restRoutes(r chi.Router) {
	if s.cfg.Observer != nil {
		r.Use(s.observeREST)
	}
	r.Use(boundRequest(restReadDeadline, restWriteDeadline))
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.Post("/events", s.serveEvents)
		r.Post("/batch_events", s.serveBatchEvents)
		r.Get("/channels", s.serveChannels)
		r.Get("/channels/{channel}", s.serveChannel)
		r.Get("/channels/{channel}/users", s.serveUsers)
		r.Post("/users/{userID}/terminate_connections", s.serveTerminate)
		r.Get("/users/{userID}", s.serveUserStatus)
	})
	r.Group(s.tokenRoutes)
}

type restContextKey struct{}

// restRequest is what authenticate hands the endpoints: the app and the raw body it verified.
type restRequest struct {
	app  *app
	body []byte
}

func restFrom(r *http.Request) restRequest { return r.Context().Value(restContextKey{}).(restRequest) }

// REST deadlines. The HTTP server itself sets no read or write timeout because those would also cut
// hijacked WebSocket connections. Reading ends before writing must, so a client whose body never
// arrives (a large Content-Length, then a trickle) still gets its 408 before the connection closes.
const (
	restReadDeadline  = 30 * time.Second
	restWriteDeadline = restReadDeadline + 10*time.Second
)

// boundRequest gives a REST request its read and write deadlines, both counted from its arrival.
func boundRequest(read, write time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(read))
			_ = rc.SetWriteDeadline(now.Add(write))
			next.ServeHTTP(w, r)
		})
	}
}

// authenticate resolves the app (404), reads the body within its bound (413, at once when
// Content-Length says so) and the read deadline (408), verifies the signature over the raw bytes
// before any parsing (401) and refuses disabled apps (403).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := s.apps.Load().byID[chi.URLParam(r, "appID")]
		if a == nil {
			writeError(w, http.StatusNotFound, "Unknown app id")
			return
		}
		limit := maxRESTBody(a.Limits)
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close") // the body stays unread
			writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
			case errors.Is(err, os.ErrDeadlineExceeded):
				w.Header().Set("Connection", "close")
				writeError(w, http.StatusRequestTimeout, "Request body not received in time")
			default:
				writeError(w, http.StatusBadRequest, "Could not read the request body")
			}
			return
		}
		req := auth.Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Body: body}
		if err := auth.VerifyRequest(req, a.Key, a.Secret, s.cfg.Now()); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if !a.Enabled {
			writeError(w, http.StatusForbidden, "Application is disabled")
			return
		}
		ctx := context.WithValue(r.Context(), restContextKey{}, restRequest{app: a, body: body})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// maxRESTBody is the largest body worth reading: a full batch of maximal events, each data string
// escaped at worst six bytes per byte, plus room for names and channel lists.
func maxRESTBody(l pusher.Limits) int64 {
	return int64(l.MaxBatchEvents)*int64(6*l.MaxEventDataBytes+64<<10) + 64<<10
}

// writeJSON answers 200 with a JSON body: every SDK treats anything else as failure.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers a failed REST call with a plain-text body the SDKs show the developer verbatim.
func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, message+"\n")
}

func writeProtocolError(w http.ResponseWriter, perr *pusher.Error) {
	writeError(w, perr.HTTPStatus(), perr.Message)
}

// observeREST reports each REST request's route, status and duration to the Observer.
func (s *Server) observeREST(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "unknown"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = strings.TrimPrefix(rc.RoutePattern(), s.cfg.PathPrefix)
		}
		appID := chi.URLParam(r, "appID")
		if s.apps.Load().byID[appID] == nil {
			appID = "" // an unknown id must not become a label value
		}
		s.cfg.Observer.REST(appID, route, sw.status, time.Since(start))
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
