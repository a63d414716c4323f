// Command herald-bench measures a running Herald (or any Pusher-compatible server) from the outside,
// through the Go SDK in clients/. Each subcommand prints a human summary and one JSON line.
//
//	herald-bench conns --n 5000 --channels 100 --pid $(pgrep -x herald)
//	herald-bench fanout --subs 1000 --events 2000 --pid $(pgrep -x herald)
//	herald-bench churn --workers 16 --duration 10s --pid $(pgrep -x herald)
//	herald-bench client-events --pairs 500 --rate 8 --pid $(pgrep -x herald)
//	herald-bench chart --in results.jsonl --out docs/benchmarks.svg
//
// With --pid, each load subcommand also reads the server's CPU time (utime+stime) and RSS from /proc
// and reports CPU per unit of work, which stays meaningful on a busy machine where wall-clock
// throughput does not. It targets loopback addresses only, and every loop it runs is bounded in count
// and time. cmd/herald-bench/bench.sh runs the whole suite against a freshly built, pinned server.
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
	"conns":         runConns,
	"fanout":        runFanout,
	"churn":         runChurn,
	"client-events": runClientEvents,
	"sessions":      runSessions,
	"chart":         runChart,
}

const usage = `usage: herald-bench <subcommand> [flags]   (herald-bench <subcommand> -h lists the flags)

subcommands:
  conns          open N subscribed connections and report the server's memory per connection;
                 --rounds R repeats open/close for the leak check
  fanout         S subscribers on one channel, M events published through the REST API: deliveries/s,
                 end-to-end latency, lost and duplicated, server CPU per delivery
  churn          connect/subscribe/unsubscribe/close cycles for T seconds: cycles/s, server CPU per cycle
  client-events  P pairs on private channels exchanging client events under the 10/s limit:
                 relayed/s, latency, server CPU per relayed event
  sessions       open N idle HTTP fallback sessions (xhr_streaming or polling) and report the server's
                 memory per session
  chart          render the JSON lines of a results file as an SVG
`

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 || subcommands[args[0]] == nil {
		fmt.Fprint(errOut, usage)
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
