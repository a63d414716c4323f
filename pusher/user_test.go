package pusher

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseUserData(t *testing.T) {
	l := DefaultLimits()
	u, err := ParseUserData(`{"id":"42","user_info":{"name":"Ann"},"watchlist":["7","9"]}`, l)
	if err != nil || u.ID != "42" || string(u.Info) != `{"name":"Ann"}` || strings.Join(u.Watchlist, ",") != "7,9" {
		t.Fatalf("ParseUserData = %+v, %v", u, err)
	}
	for _, bad := range []string{
		`{"id":42}`, `{"id":""}`, `{"user_info":{}}`, `"42"`, `not json`,
		`{"id":"` + strings.Repeat("x", 129) + `"}`,
		`{"id":"1","user_info":"` + strings.Repeat("x", 1100) + `"}`,
		`{"id":"1","watchlist":"7"}`,
	} {
		if _, err := ParseUserData(bad, l); err == nil {
			t.Errorf("ParseUserData(%.40s) accepted", bad)
		}
	}
}

// TestSigninIDsAreReachable: sign-in accepts exactly the ids whose #server-to-user- channel a REST
// publish accepts, so every signed-in user can be sent to and terminated; others are refused with
// a message that says why.
func TestSigninIDsAreReachable(t *testing.T) {
	l := DefaultLimits()
	for _, id := range []string{"42", "ann@example.com", "u_1-2=3,4.5;6", strings.Repeat("x", l.MaxUserIDLength)} {
		if _, err := ParseUserData(`{"id":"`+id+`"}`, l); err != nil {
			t.Errorf("id %q refused: %s", id, err.Message)
		}
	}
	for _, id := range []string{"a b/é", "auth0|5f7c", "a/b", "50%", "a?b", "a#b", "a b", "é", `a\"b`, "a:b", `a\u0000b`} {
		_, err := ParseUserData(`{"id":"`+id+`"}`, l)
		if err == nil || !strings.Contains(err.Message, "cannot be reached by sendToUser or terminate_connections") ||
			!strings.Contains(err.Message, "at most 128 of A-Z a-z 0-9 _ - = @ , . ;") {
			t.Errorf("id %q: %v, want a refusal naming sendToUser", id, err)
		}
	}
	// Short channel names shorten sign-in ids: the channel must fit.
	short := l
	short.MaxChannelNameLength = 20 // #server-to-user- and 4 characters
	if _, err := ParseUserData(`{"id":"1234"}`, short); err != nil {
		t.Errorf("4 characters refused under a 20-character channel limit: %s", err.Message)
	}
	if _, err := ParseUserData(`{"id":"12345"}`, short); err == nil || !strings.Contains(err.Message, "at most 4 of") {
		t.Errorf("5 characters under a 20-character channel limit: %v", err)
	}
	// Property: whatever ParseUserData accepts, the publish rule accepts as a #server-to-user- channel.
	for b := range 256 {
		id := "u" + string(rune(b))
		raw, _ := json.Marshal(map[string]string{"id": id})
		if _, err := ParseUserData(string(raw), l); err == nil {
			if perr := ValidateChannelName(ServerToUserPrefix+id, l.MaxChannelNameLength); perr != nil {
				t.Errorf("id %q signs in but its channel is refused: %s", id, perr.Message)
			}
		}
	}
}

func TestSigninSuccessFrameEchoesUserData(t *testing.T) {
	userData := `{"id":"42","user_info":{"q":"\"quoted\""}}`
	var f struct {
		Event string `json:"event"`
		Data  string `json:"data"`
	}
	if err := json.Unmarshal(SigninSuccessFrame(userData), &f); err != nil {
		t.Fatal(err)
	}
	var d struct {
		UserData string `json:"user_data"`
	}
	if err := json.Unmarshal([]byte(f.Data), &d); err != nil || f.Event != EventSigninSuccess || d.UserData != userData {
		t.Errorf("frame %+v → user_data %q, want it echoed exactly", f, d.UserData)
	}
}

func TestWatchlistFrame(t *testing.T) {
	tests := []struct {
		online, offline []string
		want            string
	}{
		{[]string{"7"}, []string{"9"}, `{"events":[{"name":"online","user_ids":["7"]},{"name":"offline","user_ids":["9"]}]}`},
		{nil, []string{"9", "10"}, `{"events":[{"name":"offline","user_ids":["9","10"]}]}`},
		{[]string{"a\"b"}, nil, `{"events":[{"name":"online","user_ids":["a\"b"]}]}`},
	}
	for _, tt := range tests {
		var f struct {
			Event   string  `json:"event"`
			Channel *string `json:"channel"`
			Data    string  `json:"data"`
		}
		if err := json.Unmarshal(WatchlistFrame(tt.online, tt.offline), &f); err != nil {
			t.Fatal(err)
		}
		if f.Event != EventWatchlist || f.Channel != nil || f.Data != tt.want {
			t.Errorf("WatchlistFrame(%v, %v) = %+v, want data %s and no channel", tt.online, tt.offline, f, tt.want)
		}
	}
}

func TestCacheFieldEncoding(t *testing.T) {
	for _, tt := range []struct {
		resp ChannelResponse
		want string
	}{
		{ChannelResponse{Occupied: true}, `{"occupied":true}`},
		{ChannelResponse{Cache: &CacheField{}}, `{"occupied":false,"cache":null}`},
		{ChannelResponse{Cache: &CacheField{Info: &CacheInfo{Data: "x", TTL: 5}}}, `{"occupied":false,"cache":{"data":"x","ttl":5}}`},
	} {
		b, err := json.Marshal(tt.resp)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal = %s (%v), want %s", b, err, tt.want)
		}
	}
}

func TestSubscriptionCountFrame(t *testing.T) {
	want := `{"event":"pusher_internal:subscription_count","channel":"c","data":"{\"subscription_count\":3}"}`
	if got := string(SubscriptionCountFrame("c", 3)); got != want {
		t.Errorf("SubscriptionCountFrame = %s", got)
	}
}
