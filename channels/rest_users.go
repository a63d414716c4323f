package channels

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/herald-rt/herald/pusher"
)

// serveTerminate closes every connection signed in as the user, on every node, with 4009; their
// presence memberships end with the usual member_removed. An offline user is not an error.
func (s *Server) serveTerminate(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	userID, ok := userParam(w, r, rr.app)
	if !ok {
		return
	}
	err := s.broker.Publish(r.Context(), Message{AppID: rr.app.ID, Channel: pusher.ServerToUserPrefix + userID, Terminate: true})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "Could not reach every node, try again")
		return
	}
	writeJSON(w, struct{}{})
}

// serveUserStatus is Herald's online query: is the user signed in, and on how many connections. It
// answers the "is an admin connected?" question without a presence channel.
func (s *Server) serveUserStatus(w http.ResponseWriter, r *http.Request) {
	rr := restFrom(r)
	userID, ok := userParam(w, r, rr.app)
	if !ok {
		return
	}
	n, err := s.users.Count(r.Context(), rr.app.ID, userID)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "User registry is unavailable, try again")
		return
	}
	writeJSON(w, pusher.UserStatusResponse{ID: userID, Online: n > 0, Connections: n})
}

// userParam reads the user id from the path (SDKs put it there unescaped) and checks its length.
func userParam(w http.ResponseWriter, r *http.Request, a *app) (string, bool) {
	userID, err := url.PathUnescape(chi.URLParam(r, "userID"))
	if err != nil || userID == "" || len(userID) > a.Limits.MaxUserIDLength {
		writeError(w, http.StatusBadRequest, "Invalid user id in path")
		return "", false
	}
	return userID, true
}
