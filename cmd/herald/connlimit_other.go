//go:build !unix

package main

// openFilesLimit is unknown here: Windows has no per-process limit on sockets of this kind.
func openFilesLimit() (uint64, bool) { return 0, false }
