package pusher

import (
	"reflect"
	"strings"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name   string
		kind   Kind
		cached bool
	}{
		{"my-channel", KindPublic, false},
		{"cache-x", KindPublic, true},
		{"foo-cache-bar", KindPublic, false}, // prefixes are anchored
		{"private-a", KindPrivate, false},
		{"private-cache-a", KindPrivate, true},
		{"private-encrypted-a", KindEncrypted, false},
		{"private-encrypted-cache-a", KindEncrypted, true},
		{"presence-a", KindPresence, false},
		{"presence-cache-a", KindPresence, true},
		{"#server-to-user-42", KindServerToUser, false},
		{"xprivate-a", KindPublic, false},
	}
	for _, tt := range tests {
		kind, cached := KindOf(tt.name)
		if kind != tt.kind || cached != tt.cached {
			t.Errorf("KindOf(%q) = %v, %v; want %v, %v", tt.name, kind, cached, tt.kind, tt.cached)
		}
	}
}

func TestValidateChannelName(t *testing.T) {
	ok := []string{"a", strings.Repeat("a", 164), "A-z_0=9@,.;", "#server-to-user-42", "presence-room-1"}
	bad := []string{"", strings.Repeat("a", 165), "has space", "slash/es", "#foo", "#server-to-user-", "ünïcode", "#server-to-user-a b"}
	for _, name := range ok {
		if err := ValidateChannelName(name, 164); err != nil {
			t.Errorf("ValidateChannelName(%q) = %v, want ok", name, err)
		}
	}
	for _, name := range bad {
		err := ValidateChannelName(name, 164)
		if err == nil {
			t.Errorf("ValidateChannelName(%q) accepted", name)
			continue
		}
		if err.Closes() || err.HTTPStatus() != 400 || err.SubscriptionType() != TypeInvalidChannel {
			t.Errorf("ValidateChannelName(%q) = %+v, want non-fatal 400 InvalidChannel", name, err)
		}
	}
}

func TestSocketIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewSocketID()
		if !ValidSocketID(id) {
			t.Fatalf("NewSocketID() = %q, not ^\\d+\\.\\d+$", id)
		}
		if seen[id] {
			t.Fatalf("NewSocketID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, s := range []string{"", ".", "1.", ".1", "1.2.3", "a.1", "1,2", " 1.2", "1.2\n"} {
		if ValidSocketID(s) {
			t.Errorf("ValidSocketID(%q) = true", s)
		}
	}
	if !ValidSocketID("264774.13368624") {
		t.Error("Pusher's own socket id rejected")
	}
}

func TestErrorCloses(t *testing.T) {
	for code, closes := range map[int]bool{0: false, 4000: true, 4009: true, 4100: true, 4201: true, 4299: true, 4301: false, 4302: false} {
		if got := (&Error{Code: code}).Closes(); got != closes {
			t.Errorf("Error{%d}.Closes() = %v, want %v", code, got, closes)
		}
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	l := Limits{MaxPresenceMembers: 7}.WithDefaults()
	want := DefaultLimits()
	want.MaxPresenceMembers = 7
	if l != want {
		t.Errorf("WithDefaults() = %+v, want %+v", l, want)
	}
}

// TestLimitNamesMatchJSON keeps the names validation reports equal to the config file's field names.
func TestLimitNamesMatchJSON(t *testing.T) {
	var l Limits
	typ := reflect.TypeOf(l)
	fields := l.fields()
	if len(fields) != typ.NumField() {
		t.Fatalf("fields() lists %d limits, Limits has %d", len(fields), typ.NumField())
	}
	for i, f := range fields {
		if tag := typ.Field(i).Tag.Get("json"); tag != f.name {
			t.Errorf("limit %d: fields() says %q, json tag %q", i, f.name, tag)
		}
	}
}

func TestAppValidateNamesTheField(t *testing.T) {
	a := App{ID: "1", Key: "k", Secret: "s", Limits: Limits{MaxBatchEvents: -1}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "max_batch_events") {
		t.Errorf("Validate() = %v, want it to name max_batch_events", err)
	}
	if err := (&App{ID: "1", Key: "k"}).Validate(); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("Validate() = %v, want it to name the secret", err)
	}
}
