package channels

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/pusher"
)

// Herald's token-based authorization: POST /apps/{app_id}/auth/channel and /auth/user speak what
// pusher-js's channelAuthorization and userAuthentication endpoints speak (a form with socket_id and
// channel_name in, {"auth", "channel_data"} or {"auth", "user_data"} out), authorized by a bearer JWT
// the app's backend minted, so a static front end needs no auth route of its own.

// maxTokenForm bounds the form of a token request: a socket id and a channel name.
const maxTokenForm = 4 << 10

// tokenRoutes mounts the token endpoints; they are not signed REST calls, and browsers on other
// origins call them, so they answer CORS preflights. Any origin is allowed: the bearer token, not a
// cookie, is the credential (pusher-js sends no credentials with these requests).
func (s *Server) tokenRoutes(r chi.Router) {
	r.Use(allowAnyOrigin)
	r.Post("/auth/channel", s.serveChannelToken)
	r.Post("/auth/user", s.serveUserToken)
	r.Options("/auth/channel", preflight)
	r.Options("/auth/user", preflight)
}

func allowAnyOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		next.ServeHTTP(w, r)
	})
}

func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// tokenRequest checks what both endpoints need: a known, enabled app, a valid bearer token and a well
// formed socket id. It answers the request itself when something is wrong.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (*app, *auth.TokenClaims, string, bool) {
	a := s.apps.Load().byID[chi.URLParam(r, "appID")]
	if a == nil {
		writeError(w, http.StatusNotFound, "Unknown app id")
		return nil, nil, "", false
	}
	if !a.Enabled {
		writeError(w, http.StatusForbidden, "Application is disabled")
		return nil, nil, "", false
	}
	token, found := auth.BearerToken(r.Header.Get("Authorization"))
	if !found {
		writeError(w, http.StatusUnauthorized, "Missing token: send Authorization: Bearer <token> (set channelAuthorization.headers in pusher-js)")
		return nil, nil, "", false
	}
	claims, err := auth.VerifyToken(token, a.ID, s.tokenKey(a), s.cfg.Now())
	if err != nil {
		var terr *auth.TokenError
		if errors.As(err, &terr) {
			writeError(w, terr.Status, terr.Message)
		} else {
			s.log.Error().Err(err).Str("app_id", a.ID).Msg("token key misconfigured")
			writeError(w, http.StatusInternalServerError, "Token verification is misconfigured for this app")
		}
		return nil, nil, "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	socketID := r.PostFormValue("socket_id")
	if !pusher.ValidSocketID(socketID) {
		writeError(w, http.StatusBadRequest, "Invalid or missing socket_id")
		return nil, nil, "", false
	}
	return a, claims, socketID, true
}

// tokenKey is the key an app's tokens are verified with: its configured one, else HS256 over the app
// secret.
func (s *Server) tokenKey(a *app) auth.TokenKey {
	if k, ok := s.apps.Load().tokens[a.ID]; ok {
		return k
	}
	return auth.TokenKey{HMACSecret: []byte(a.Secret)}
}

// serveChannelToken signs a private or presence subscription the token allows. Presence members are
// the token's user; encrypted channels are refused, since their shared secret derives from the app's
// encryption master key, which Herald must never hold.
func (s *Server) serveChannelToken(w http.ResponseWriter, r *http.Request) {
	a, claims, socketID, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	name := r.PostFormValue("channel_name")
	if perr := pusher.ValidateChannelName(name, a.Limits.MaxChannelNameLength); perr != nil {
		writeProtocolError(w, perr)
		return
	}
	kind, _ := pusher.KindOf(name)
	switch kind {
	case pusher.KindPrivate, pusher.KindPresence:
	case pusher.KindEncrypted:
		writeError(w, http.StatusForbidden, "private-encrypted- channels need your backend: their shared secret comes from your encryption master key")
		return
	default:
		writeError(w, http.StatusBadRequest, "Only private- and presence- channels need authorization")
		return
	}
	if err := claims.CheckChannel(name); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	resp := struct {
		Auth        string `json:"auth"`
		ChannelData string `json:"channel_data,omitempty"`
	}{}
	if kind == pusher.KindPresence {
		m, perr := pusher.NewMember(claims.UserID, claims.UserInfo, a.Limits)
		if perr != nil {
			writeProtocolError(w, perr)
			return
		}
		resp.ChannelData = pusher.MemberAddedData(m) // {"user_id":…,"user_info":…}
	}
	resp.Auth = auth.SignChannel(a.Key, a.Secret, socketID, name, resp.ChannelData)
	writeJSON(w, resp)
}

// serveUserToken signs a pusher:signin for the token's user, with its user_info and watchlist. A
// user id sign-in would refuse (pusher.ValidateSigninID) is refused here, not signed.
func (s *Server) serveUserToken(w http.ResponseWriter, r *http.Request) {
	a, claims, socketID, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	m, perr := pusher.NewMember(claims.UserID, claims.UserInfo, a.Limits)
	if perr == nil {
		perr = pusher.ValidateSigninID(m.UserID, a.Limits)
	}
	if perr != nil {
		writeProtocolError(w, perr)
		return
	}
	userData, err := json.Marshal(struct {
		ID        string          `json:"id"`
		UserInfo  json.RawMessage `json:"user_info,omitempty"`
		Watchlist []string        `json:"watchlist,omitempty"`
	}{m.UserID, m.Info, claims.Watchlist})
	if err != nil {
		writeError(w, http.StatusBadRequest, "user_info in the token is not valid JSON")
		return
	}
	writeJSON(w, struct {
		Auth     string `json:"auth"`
		UserData string `json:"user_data"`
	}{auth.SignUser(a.Key, a.Secret, socketID, string(userData)), string(userData)})
}

// tokenKeysValid checks configured token keys when the server starts, naming the app at fault.
func tokenKeysValid(keys map[string]auth.TokenKey, apps *appRegistry) error {
	for id, k := range keys {
		if apps.byID[id] == nil {
			return errors.New("channels: token key for unknown app " + id)
		}
		if err := k.Validate(); err != nil {
			return errors.New("channels: token key of app " + id + ": " + err.Error())
		}
	}
	return nil
}
