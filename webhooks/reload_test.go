package webhooks

import (
	"reflect"
	"testing"

	"github.com/herald-rt/herald/auth"
)

func appWith(secret string, endpoints ...Endpoint) []App {
	return []App{{ID: testAppID, Key: testKey, Secret: secret, Endpoints: endpoints}}
}

// TestReloadKeepsWhatAnEndpointHolds: a new secret and a new endpoint reach a dispatcher with events
// waiting. The kept endpoint delivers its waiting events in order, then signs with the new secret;
// the new endpoint gets only events emitted after the reload; the removal of a channel announced
// before the reload reaches the kept endpoint alone (the new one never heard of the channel).
func TestReloadKeepsWhatAnEndpointHolds(t *testing.T) {
	kept := Endpoint{URL: "http://hook.test/"}
	h := start(t, Config{RemovalDelay: -1}, kept)
	release := h.rc.holdFirst(t, "hook.test")
	h.emit(occupied("first"))
	h.rc.expect(t, "channel_occupied:first") // held: what follows waits in the queue
	h.emit(occupied("second"))
	if err := h.d.Reload(appWith("new-secret", kept, Endpoint{URL: "http://new.test/"})); err != nil {
		t.Fatal(err)
	}
	h.emit(occupied("third"), vacated("second"), vacated("first"), occupied("marker"))
	release()
	byURL := map[string][]string{}
	for len(byURL["http://hook.test/"]) < 3 || len(byURL["http://new.test/"]) < 2 {
		r := h.rc.next(t)
		byURL[r.URL] = append(byURL[r.URL], r.names()...)
		if r.URL == "http://hook.test/" && r.names()[0] == "channel_occupied:third" &&
			r.Header.Get("X-Pusher-Signature") != auth.SignWebhook("new-secret", r.Body) {
			t.Error("after the reload the kept endpoint did not sign with the new secret")
		}
	}
	// "second" was still waiting when its vacated came: the pair cancelled in the kept endpoint's
	// queue. The new endpoint never heard of "first", so it does not hear it vacated.
	want := map[string][]string{
		"http://hook.test/": {"channel_occupied:third", "channel_vacated:first", "channel_occupied:marker"},
		"http://new.test/":  {"channel_occupied:third", "channel_occupied:marker"},
	}
	if !reflect.DeepEqual(byURL, want) {
		t.Errorf("after the reload: %v, want %v", byURL, want)
	}
}

// TestReloadRemovesAnApp: once its app is removed, an app's events are ignored, and a bad
// configuration changes nothing.
func TestReloadRemovesAnApp(t *testing.T) {
	h := start(t, Config{RemovalDelay: -1})
	if err := h.d.Reload(appWith("s", Endpoint{URL: "ftp://bad.test/"})); err == nil {
		t.Fatal("a bad configuration was accepted")
	}
	h.emit(occupied("still"))
	h.rc.expect(t, "channel_occupied:still")
	if err := h.d.Reload(nil); err != nil {
		t.Fatal(err)
	}
	h.emit(occupied("gone"))
	if err := h.d.Reload(appWith(testSecret, Endpoint{URL: "http://hook.test/"})); err != nil {
		t.Fatal(err)
	}
	h.emit(occupied("marker"))
	h.rc.expect(t, "channel_occupied:marker") // first: "gone" was never sent
}
