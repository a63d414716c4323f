#!/usr/bin/env bash
# Herald load benchmarks, reproducibly: build herald and herald-bench, then for each measurement start
# a fresh herald pinned to core 0 (log level warn), run one herald-bench subcommand pinned to core 1
# with fixed parameters, append its JSON line to the results file, and stop herald. Ends with an SVG
# chart of the results. Every step is bounded in time; the whole run takes about
# 20 minutes, 12 of them the leak check waiting for the server's runtime to return freed memory.
#
#   cmd/herald-bench/bench.sh                          # or: make bench-load
#   RESULTS=docs/bench-baseline.jsonl SVG=docs/bench-baseline.svg cmd/herald-bench/bench.sh
#   ONLY="fanout-1k churn" cmd/herald-bench/bench.sh   # a subset, by step name
#   NODES=3 RESULTS=docs/bench-cluster-3.jsonl cmd/herald-bench/bench.sh   # a cluster on one Redis
#
# Environment: PORT (6101; herald's pprof listener takes PORT+1), RESULTS (bin/bench-results.jsonl, overwritten unless APPEND=1),
# SVG (bin/bench-results.svg), ONLY (space-separated step names; empty runs all), SERVER_CPU (0),
# BENCH_CPU (1), HERALD_BIN (a herald binary to measure instead of building this tree's, e.g. one
# built from an older commit, for a before-and-after comparison in one session), NODES (1; more runs
# that many nodes on one redis-server of the script's own, every node and Redis pinned to SERVER_CPU:
# the sockets are spread over the nodes, REST goes to the first, CPU and RSS are the nodes' sum, and
# each line also counts Redis's commands per unit of work), REDIS (0; 1 puts even one node on Redis),
# HERALD_ARGS (more flags for every herald, e.g. "--metrics-addr 127.0.0.1:0" to measure metrics' cost).
#
#   git worktree add /tmp/base <commit> && (cd /tmp/base && go build -o /tmp/herald-base ./cmd/herald)
#   HERALD_BIN=/tmp/herald-base RESULTS=bin/before.jsonl cmd/herald-bench/bench.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
PORT=${PORT:-6101}
DEBUG_PORT=$((PORT + 1)) # herald's pprof listener, for the goroutine count of the conns steps
RESULTS=${RESULTS:-bin/bench-results.jsonl}
SVG=${SVG:-bin/bench-results.svg}
ONLY=${ONLY:-}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
GO=${GO:-go}
NODES=${NODES:-1}
REDIS=${REDIS:-0}
[ "$NODES" -gt 1 ] && REDIS=1
REDIS_PORT=$((PORT + 50))
LOG=bin/bench-herald.log

mkdir -p bin "$(dirname "$RESULTS")" "$(dirname "$SVG")"
HERALD_BIN=${HERALD_BIN:-bin/herald}
[ "$HERALD_BIN" != bin/herald ] || $GO build -o bin/herald ./cmd/herald
$GO build -o bin/herald-bench ./cmd/herald-bench

server_pin=() bench_pin=()
if command -v taskset >/dev/null && taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$BENCH_CPU" true 2>/dev/null; then
	server_pin=(taskset -c "$SERVER_CPU") bench_pin=(taskset -c "$BENCH_CPU")
else
	echo "bench.sh: taskset unavailable or cores $SERVER_CPU/$BENCH_CPU missing: running unpinned" >&2
fi

# The running servers: process ids, socket URLs (comma-separated, as herald-bench takes them) and the
# Redis the nodes share, if any.
HERALD_PIDS=() URLS= REDIS_PID=
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_herald() {
	local cluster=()
	if [ "$REDIS" = 1 ]; then
		listening "$REDIS_PORT" && { echo "bench.sh: something already listens on 127.0.0.1:$REDIS_PORT" >&2; return 1; }
		"${server_pin[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
			--loglevel warning >>"$LOG" 2>&1 &
		REDIS_PID=$!
		for _ in $(seq 100); do listening "$REDIS_PORT" && break; sleep 0.1; done
		cluster=(--redis-url "redis://127.0.0.1:$REDIS_PORT")
	fi
	URLS=
	local i port
	for i in $(seq "$NODES"); do
		port=$((PORT + 2 * (i - 1)))
		if listening "$port"; then
			echo "bench.sh: something already listens on 127.0.0.1:$port; stop it or set PORT" >&2
			return 1
		fi
		# --max-connections 0: the 19.5k step needs more than the cap derived from the open-files limit.
		# Each node's pprof listener is on its port + 1.
		"${server_pin[@]}" "$HERALD_BIN" --addr "127.0.0.1:$port" --debug-addr "127.0.0.1:$((port + 1))" \
			--max-connections 0 --log-level warn --log-format json "${cluster[@]}" ${cluster:+--node-id "n$i"} \
			${HERALD_ARGS:-} 2>>"$LOG" &
		HERALD_PIDS+=($!)
		URLS=${URLS:+$URLS,}ws://127.0.0.1:$port
	done
	for i in $(seq "$NODES"); do
		port=$((PORT + 2 * (i - 1)))
		local up=
		for _ in $(seq 100); do # up to 10 s
			kill -0 "${HERALD_PIDS[$((i - 1))]}" 2>/dev/null || { echo "bench.sh: herald exited, see $LOG" >&2; return 1; }
			if listening "$port"; then up=1; break; fi
			sleep 0.1
		done
		[ -n "$up" ] || { echo "bench.sh: herald did not listen on $port within 10 s" >&2; return 1; }
	done
	sleep 0.5 # let the runtime settle before the idle RSS is read
}

stop_process() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 150); do # up to 15 s
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

stop_herald() {
	local pid stoppers=()
	for pid in "${HERALD_PIDS[@]}"; do
		stop_process "$pid" &
		stoppers+=($!)
	done
	# Not a bare wait: it would wait for Redis, a background child of this shell too.
	[ ${#stoppers[@]} -eq 0 ] || wait "${stoppers[@]}"
	HERALD_PIDS=()
	[ -z "$REDIS_PID" ] || stop_process "$REDIS_PID"
	REDIS_PID=
}
trap stop_herald EXIT

# step NAME LIMIT_SECONDS SUBCOMMAND FLAGS… runs one measurement against a fresh herald.
step() {
	local name=$1 limit=$2
	shift 2
	if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then
		return 0
	fi
	echo "== $name: herald-bench $*"
	start_herald
	local out rc=0
	local pids redis=()
	pids=$(IFS=,; echo "${HERALD_PIDS[*]}")
	[ "$REDIS" != 1 ] || redis=(--redis "127.0.0.1:$REDIS_PORT")
	out=$(timeout -k 5 "$limit" "${bench_pin[@]}" bin/herald-bench "$@" --url "$URLS" --pid "$pids" "${redis[@]}" \
		--label "$name" --timeout "$((limit - 10))s" 2>&1) || rc=$?
	stop_herald
	echo "$out" | grep -v '^{' || true
	echo "$out" | grep '^{' >>"$RESULTS" || true
	[ "$rc" -eq 0 ] || echo "bench.sh: $name failed with status $rc" >&2
	sleep 2 # let closed sockets leave the machine's tables between steps
}

[ "${APPEND:-0}" = 1 ] || : >"$RESULTS"
{
	printf '{"bench":"meta","date":"%s","nproc":%s,"cpu":"%s","go":"%s","server_cpu":"%s","bench_cpu":"%s","nodes":%s,"redis":%s}\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" \
		"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"/\\"/g')" \
		"$($GO env GOVERSION)" "$SERVER_CPU" "$BENCH_CPU" "$NODES" "$REDIS"
} >>"$RESULTS"

step fanout-1k        120 fanout --subs 1000 --events 3000 --size 200 --inflight 4 --window 32
step fanout-10k       180 fanout --subs 10000 --events 300 --size 200 --inflight 4 --window 32
step fanout-1k-40hz   120 fanout --subs 1000 --events 400 --size 200 --rate 40
step churn             60 churn --workers 16 --duration 10s --sources 8
step churn-presence    60 churn --workers 16 --duration 10s --sources 8 --presence
step client-events     90 client-events --pairs 1000 --rate 8 --duration 10s --size 100
DEBUG_URL="http://127.0.0.1:$DEBUG_PORT"
step conns-5k          90 conns --n 5000 --channels 100 --rate 2000 --hold 3s --debug-url "$DEBUG_URL"
step conns-10k         90 conns --n 10000 --channels 100 --rate 2000 --hold 3s --debug-url "$DEBUG_URL"
step conns-15k        120 conns --n 15000 --channels 100 --rate 2000 --hold 3s --debug-url "$DEBUG_URL"
step conns-19.5k      150 conns --n 19500 --channels 100 --rate 2000 --hold 3s --debug-url "$DEBUG_URL"
step leak-10x10k     1100 conns --n 10000 --channels 100 --rate 2000 --hold 2s --rounds 10 --settle 3s --idle-settle 420s --debug-url "$DEBUG_URL"

bin/herald-bench chart --in "$RESULTS" --out "$SVG"
echo "results: $RESULTS, chart: $SVG"
