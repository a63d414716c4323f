package main

import (
	"strings"
	"testing"
)

func TestParseCommandStats(t *testing.T) {
	got := parseCommandStats("# Commandstats\r\ncmdstat_publish:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=3,usec=1\r\ncmdstat_bad:calls=x\r\nnot_a_cmd:calls=5\r\n")
	if len(got) != 2 || got["publish"] != 12 || got["client|setinfo"] != 3 {
		t.Errorf("parseCommandStats = %v, want publish 12 and client|setinfo 3", got)
	}
}

// FuzzParseCommandStats: whatever Redis (or something else on its port) answers, parsing never panics
// and reports only commands the answer names.
func FuzzParseCommandStats(f *testing.F) {
	f.Add("cmdstat_publish:calls=1,usec=2\r\ncmdstat_evalsha:calls=3\r\n")
	f.Add("cmdstat_:calls=\n:\ncmdstat_x:calls=-1,calls=2")
	f.Fuzz(func(t *testing.T, info string) {
		for name := range parseCommandStats(info) {
			if !strings.Contains(info, "cmdstat_"+name+":") {
				t.Errorf("reported %q, which %q does not name", name, info)
			}
		}
	})
}
