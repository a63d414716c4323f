package pusher

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseChannelData(t *testing.T) {
	l := DefaultLimits()
	tests := []struct {
		in, id, info string
		wantErr      bool
	}{
		{`{"user_id":"42","user_info":{"name":"Ann"}}`, "42", `{"name":"Ann"}`, false},
		{`{"user_id":10,"user_info":{"name":"Mr. Channels"}}`, "10", `{"name":"Mr. Channels"}`, false},
		{`{"user_id":"7"}`, "7", "", false},
		{`{"user_id":"7","user_info":null}`, "7", "", false},
		{`{"user_info":{}}`, "", "", true},
		{`{"user_id":""}`, "", "", true},
		{`{"user_id":1.5}`, "", "", true},
		{`{"user_id":{"a":1}}`, "", "", true},
		{`not json`, "", "", true},
		{`{"user_id":"` + strings.Repeat("x", 129) + `"}`, "", "", true},
		{`{"user_id":"1","user_info":"` + strings.Repeat("x", 1100) + `"}`, "", "", true},
	}
	for _, tt := range tests {
		m, err := ParseChannelData(tt.in, l)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseChannelData(%.40s) accepted", tt.in)
			}
			continue
		}
		if err != nil || m.UserID != tt.id || string(m.Info) != tt.info {
			t.Errorf("ParseChannelData(%s) = %+v (info %s), %v", tt.in, m, m.Info, err)
		}
	}
}

func TestPresenceData(t *testing.T) {
	data := PresenceData([]Member{{UserID: "1", Info: json.RawMessage(`{"name":"Bo"}`)}, {UserID: "42"}})
	var d struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatalf("PresenceData = %s: %v", data, err)
	}
	p := d.Presence
	if len(p.IDs) != 2 || p.IDs[0] != "1" || p.IDs[1] != "42" || p.Count != 2 {
		t.Errorf("ids/count = %v/%d", p.IDs, p.Count)
	}
	if string(p.Hash["1"]) != `{"name":"Bo"}` || string(p.Hash["42"]) != "null" {
		t.Errorf("hash = %s", data)
	}
	if empty := PresenceData(nil); !strings.Contains(empty, `"hash":{}`) || !strings.Contains(empty, `"ids":[]`) {
		t.Errorf("empty PresenceData = %s, want an object hash and an empty ids array", empty)
	}
}

func TestMemberEventsData(t *testing.T) {
	if got := MemberAddedData(Member{UserID: "42", Info: json.RawMessage(`{"name":"Ann"}`)}); got != `{"user_id":"42","user_info":{"name":"Ann"}}` {
		t.Errorf("MemberAddedData = %s", got)
	}
	if got := MemberRemovedData("42"); got != `{"user_id":"42"}` {
		t.Errorf("MemberRemovedData = %s", got)
	}
}
