package channels

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

// postUserAuth asks restTestApp's /auth/user to sign socket 1.2 in, with the given Authorization.
func postUserAuth(s *Server, authorization string) *httptest.ResponseRecorder {
	form := url.Values{"socket_id": {"1.2"}}
	r := httptest.NewRequest(http.MethodPost, "/apps/"+restTestApp.ID+"/auth/user", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", authorization)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

// TestTokenSchemeIsCaseInsensitive: the token endpoints take the bearer scheme in any case and with
// extra spaces (RFC 9110 §11.1, §11.4); other schemes are a missing token.
func TestTokenSchemeIsCaseInsensitive(t *testing.T) {
	s := newRESTServer(t)
	token, err := auth.NewToken(restTestApp.ID, []byte(restTestApp.Secret), auth.TokenClaims{UserID: "42"}, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		authorization string
		status        int
	}{
		{"Bearer " + token, http.StatusOK},
		{"bearer " + token, http.StatusOK},
		{"BEARER " + token, http.StatusOK},
		{"Bearer   " + token + " ", http.StatusOK},
		{"Basic " + token, http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
	} {
		w := postUserAuth(s, tt.authorization)
		body := w.Body.String()
		if w.Code != tt.status || tt.status == http.StatusOK && !strings.Contains(body, `"user_data"`) ||
			tt.status != http.StatusOK && !strings.HasPrefix(body, "Missing token") {
			t.Errorf("Authorization %.20q: %d %s, want %d", tt.authorization, w.Code, body, tt.status)
		}
	}
}

// TestUserTokenForUnreachableIDIsRefused: /auth/user does not sign a user id that pusher:signin
// would refuse (pusher.ValidateSigninID); it answers 400 and says why.
func TestUserTokenForUnreachableIDIsRefused(t *testing.T) {
	s := newRESTServer(t)
	for _, tt := range []struct {
		id     string
		status int
	}{{"ann@example.com", http.StatusOK}, {"a b/é", http.StatusBadRequest}} {
		token, err := auth.NewToken(restTestApp.ID, []byte(restTestApp.Secret), auth.TokenClaims{UserID: tt.id}, time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w := postUserAuth(s, "Bearer "+token)
		if w.Code != tt.status || tt.status != http.StatusOK && !strings.Contains(w.Body.String(), "cannot be reached by sendToUser") {
			t.Errorf("user %q: %d %s, want %d", tt.id, w.Code, w.Body, tt.status)
		}
	}
}
