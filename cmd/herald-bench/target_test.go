package main

import (
	"io"
	"strings"
	"testing"
)

// TestDialingFlagsAreShared: every subcommand that dials takes --connect-rate, --parallel and
// --sources and refuses bad values with the same message, before it opens a socket.
func TestDialingFlagsAreShared(t *testing.T) {
	for _, sub := range []string{"conns", "fanout", "client-events"} {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--connect-rate", "0"}, "need --connect-rate ≥ 1 and --parallel ≥ 1"},
			{[]string{"--parallel", "0"}, "need --connect-rate ≥ 1 and --parallel ≥ 1"},
			{[]string{"--sources", "255"}, "--sources 255: at most 254"},
		} {
			var errOut strings.Builder
			if code := run(append([]string{sub}, tt.args...), io.Discard, &errOut); code == 0 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("%s %v: exit %d, %q; want %q", sub, tt.args, code, errOut.String(), tt.want)
			}
		}
	}
	var errOut strings.Builder
	if code := run([]string{"conns", "--rate", "0"}, io.Discard, &errOut); code == 0 || !strings.Contains(errOut.String(), "--connect-rate ≥ 1") {
		t.Errorf("conns --rate 0 (the old name): exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"churn", "--sources", "255"}, io.Discard, &errOut); code == 0 || !strings.Contains(errOut.String(), "--sources 255") {
		t.Errorf("churn --sources 255: exit %d, %q", code, errOut.String())
	}
}
