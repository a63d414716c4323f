//go:build !linux

package channels

// Without epoll, connections wait in their reads: park never succeeds.

func park(*Conn) bool { return false }

func unpark(*Conn) bool { return false }

func parkingSupported() bool { return false }
