package channels

import (
	"testing"

	"github.com/herald-rt/herald/pusher"
)

// restTestApp is the one app of the REST tests in this package.
var restTestApp = pusher.App{ID: "rest-1", Key: "rest-key", Secret: "rest-secret", Enabled: true}

// newRESTServer returns a server for restTestApp.
func newRESTServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Apps: []pusher.App{restTestApp}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
