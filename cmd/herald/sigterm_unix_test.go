//go:build unix

package main

import (
	"syscall"
	"testing"
)

// sigterm sends SIGTERM to the test process, which run catches like a service manager's stop.
func sigterm(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
