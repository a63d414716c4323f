//go:build !unix

package main

import "testing"

// sigterm cannot be sent to oneself here; the shutdown tests run on Unix only.
func sigterm(t *testing.T) {
	t.Helper()
	t.Skip("SIGTERM to the test process needs Unix")
}
