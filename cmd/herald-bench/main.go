// Command herald-bench measures a running Herald (or any Pusher-compatible server) from the outside,
// through the Go SDK in clients/. Each subcommand prints a human summary and one JSON line.
//
//	herald-bench conns --n 5000 --channels 100 --pid $(pgrep -x herald)
//
// It targets loopback addresses only, and every loop it runs is bounded in count and time.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var subcommands = map[string]func(args []string, out io.Writer) error{
	"conns": runConns,
}

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 || subcommands[args[0]] == nil {
		fmt.Fprintf(errOut, "usage: herald-bench <subcommand> [flags]\n\nsubcommands:\n  conns   open N subscribed connections and report the server's memory per connection\n")
		return 2
	}
	if err := subcommands[args[0]](args[1:], out); err != nil {
		fmt.Fprintf(errOut, "herald-bench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// report prints the one JSON line of a run's results.
func report(out io.Writer, result any) {
	b, _ := json.Marshal(result)
	fmt.Fprintf(out, "%s\n", b)
}
