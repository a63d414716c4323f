package main

import (
	"io"
	"math"
	"testing"
)

func TestConnectionsWithin(t *testing.T) {
	for _, tt := range []struct {
		limit uint64
		want  int
	}{
		{1024, 768},    // the common default: 256 kept
		{2560, 2304},   // 10 % is 256
		{65536, 58983}, // 10 % kept
		{512, 256},     // half
		{300, 150},     // a small limit keeps half for connections
		{64, 32},       //
		{1, 1},         //
		{0, 1},         // never 0: that would be no cap
		{math.MaxUint64, math.MaxInt32 - math.MaxInt32/10},
	} {
		if got := connectionsWithin(tt.limit); got != tt.want {
			t.Errorf("connectionsWithin(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

// TestExplicitMaxConnectionsIsAuthoritative: a max_connections given anywhere, 0 (unlimited)
// included, is used as given; only its absence derives one from the open-files limit.
func TestExplicitMaxConnectionsIsAuthoritative(t *testing.T) {
	for _, tt := range []struct {
		name        string
		args        []string
		env, file   string
		want        int
		wantDerived bool
	}{
		{"absent", nil, "", "", 768, true},
		{"flag 0", []string{"--max-connections", "0"}, "", "", 0, false},
		{"env 5000", nil, "5000", "", 5000, false},
		{"file 0", nil, "", `{"max_connections": 0}`, 0, false},
		{"file 2000", nil, "", `{"max_connections": 2000}`, 2000, false},
	} {
		args := tt.args
		if tt.file != "" {
			args = append(args, "--config", writeConfig(t, tt.file))
		}
		vars := map[string]string{}
		if tt.env != "" {
			vars["HERALD_MAX_CONNECTIONS"] = tt.env
		}
		o, err := loadOptions(args, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if n, derived := o.maxConnections(1024, true); n != tt.want || derived != tt.wantDerived {
			t.Errorf("%s: max connections %d (derived %v), want %d (%v)", tt.name, n, derived, tt.want, tt.wantDerived)
		}
	}
	o, _ := loadOptions(nil, env(nil), io.Discard)
	if n, derived := o.maxConnections(0, false); n != 0 || derived {
		t.Errorf("unknown limit: %d (derived %v), want 0: unlimited", n, derived)
	}
}
