#!/usr/bin/env bash
# resp-bench.sh - resp-server (refstore) against redis-server, measured by
# redis-benchmark with the same commands, on 127.0.0.1 only (make
# resp-bench runs it; docs/servers.md describes the server).
#
#   bench/resp/resp-bench.sh [--short] [--server PATH] [--out DIR]
#       [--requests N] [--rounds R] [--clients C] [--threads T]
#       [--pipelines "1 16"] [--tests set,get,...] [--timeout S]
#
# Starts both servers (resp-server on a port it picks itself, redis-server
# with --bind 127.0.0.1 --save '' --appendonly no on a free port), then for
# each round and pipeline depth runs
#   redis-benchmark -t <tests> -n N -c C -r 100000 -P <depth> -q --csv
# against each server in turn (the order alternates between runs; each run
# starts with FLUSHALL and is bounded by --timeout), and prints one table:
# per command and depth the median over the rounds of each server's
# requests/s, their ratio (refstore/redis; above 1 means refstore served
# more), and the medians of p50 and p99 latency as redis-benchmark 7 prints
# them in --csv; then refstore's stops of the world and pauses (INFO),
# collections per generation, and both servers' RSS (now and peak, from
# /proc).  Every process it starts it stops by its pid (trap), also on
# failure or interruption.  Exit status 1 if a run failed or resp-server
# left objects alive at shutdown.
#
# Default: 100,000 requests per command, 5 rounds, depths 1 and 16: about
# a minute and a half on two cores.  --short (CI): 10,000 requests, one
# round, a few seconds.
#
# resp-server runs with --threads (default 2) worker threads; redis-server
# with its defaults (one thread serving commands).  redis-benchmark itself
# takes a core: on a two-core machine the servers and the load generator
# share the CPUs, which the figures include.
set -u

here=$(cd "$(dirname "$0")" && pwd)
server=$here/../../build/release/bench/resp-server
out=build/bench/resp
requests=100000
rounds=5
clients=50
threads=2
pipelines="1 16"
tests=set,get,incr,lpush,lrange_100
keyspace=100000
run_timeout=120

usage() {
	sed -n '2,/^set -u/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--short) requests=10000 rounds=1 ;;
	--server) server=$2; shift ;;
	--out) out=$2; shift ;;
	--requests) requests=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--clients) clients=$2; shift ;;
	--threads) threads=$2; shift ;;
	--pipelines) pipelines=$2; shift ;;
	--tests) tests=$2; shift ;;
	--timeout) run_timeout=$2; shift ;;
	*) usage ;;
	esac
	shift
done

for c in redis-server redis-benchmark redis-cli timeout; do
	if ! command -v "$c" >/dev/null 2>&1; then
		echo "resp-bench: $c is missing (scripts/deps.sh resp installs it)" >&2
		exit 1
	fi
done
if [ ! -x "$server" ]; then
	echo "resp-bench: no server at $server (make build/release/bench/resp-server)" >&2
	exit 1
fi
mkdir -p "$out" || exit 1
rm -f "$out"/*.csv "$out"/*.err

# ---- the servers, stopped by pid whatever happens ---------------------------
rs_pid="" redis_pid=""

stop_pid() {	# stop_pid PID: TERM, up to 10 s, then KILL
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "resp-bench: $pid did not stop on SIGTERM; SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

cleanup() {
	stop_pid "$rs_pid"
	stop_pid "$redis_pid"
	rs_pid="" redis_pid=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on (a connection to it is refused), below the
# kernel's range of ephemeral ports (which the benchmark's own connections
# take, so a port there may be refused and still not free to bind).
free_port() {
	local p lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ "${lo:-0}" -gt 11000 ] || lo=32768
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# wait_ping PORT PID: until the server answers PING (10 s at most).
wait_ping() {
	for _ in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
	done
	return 1
}

"$server" --port 0 --threads "$threads" 2>"$out/resp-server.log" &
rs_pid=$!
rs_port=""
for _ in $(seq 100); do
	rs_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$out/resp-server.log")
	[ -n "$rs_port" ] && break
	sleep 0.1
done
if [ -z "$rs_port" ] || ! wait_ping "$rs_port" "$rs_pid"; then
	echo "resp-bench: resp-server did not start:" >&2
	cat "$out/resp-server.log" >&2
	exit 1
fi

# A port found free may be taken before redis binds it: three tries.
for try in 1 2 3; do
	redis_port=$(free_port) || { echo "resp-bench: no free port" >&2; exit 1; }
	redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
		--daemonize no --logfile '' >"$out/redis-server.log" 2>&1 &
	redis_pid=$!
	wait_ping "$redis_port" "$redis_pid" && break
	stop_pid "$redis_pid"
	redis_pid=""
	if [ $try = 3 ]; then
		echo "resp-bench: redis-server did not start:" >&2
		cat "$out/redis-server.log" >&2
		exit 1
	fi
done

echo "resp-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs;" \
	"resp-server (refstore, $threads threads) on :$rs_port (pid $rs_pid)," \
	"$(redis-server --version | sed 's/ sha=.*//') on :$redis_port (pid $redis_pid)"
echo "resp-bench: redis-benchmark -t $tests -n $requests -c $clients" \
	"-r $keyspace -P {$pipelines} -q --csv; $rounds round(s), timeout ${run_timeout} s each"

# ---- the runs --------------------------------------------------------------
failed=0
run_one() {	# run_one NAME PORT DEPTH ROUND
	local f="$out/$1-P$3-r$4"
	redis-cli -h 127.0.0.1 -p "$2" flushall >/dev/null 2>&1
	if ! timeout "$run_timeout" redis-benchmark -h 127.0.0.1 -p "$2" \
		-t "$tests" -n "$requests" -c "$clients" -r "$keyspace" -P "$3" \
		-q --csv >"$f.csv" 2>"$f.err"; then
		echo "resp-bench: $1 -P $3 round $4 failed or timed out ($f.err)" >&2
		failed=1
	fi
}

start=$(date +%s)
n=0
for r in $(seq "$rounds"); do
	for p in $pipelines; do
		if [ $((n % 2)) = 0 ]; then
			run_one refstore "$rs_port" "$p" "$r"
			run_one redis "$redis_port" "$p" "$r"
		else
			run_one redis "$redis_port" "$p" "$r"
			run_one refstore "$rs_port" "$p" "$r"
		fi
		n=$((n + 1))
		echo "resp-bench: round $r, -P $p done ($(( $(date +%s) - start )) s)"
	done
done

# ---- what the servers say at the end -----------------------------------------
info() { redis-cli -h 127.0.0.1 -p "$1" info "$2" 2>/dev/null | tr -d '\r'; }
field() { sed -n "s/^$1://p"; }
proc_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }

rs_info=$(info "$rs_port" refstore)
gc_info=$(info "$rs_port" collector)
stops=$(printf '%s\n' "$rs_info" | field world_stops)
ptot=$(printf '%s\n' "$rs_info" | field pause_total_us)
pmax=$(printf '%s\n' "$rs_info" | field pause_max_us)
ttsp=$(printf '%s\n' "$rs_info" | field ttsp_max_us)
rs_rss=$(proc_kb "$rs_pid" VmRSS) rs_hwm=$(proc_kb "$rs_pid" VmHWM)
redis_rss=$(proc_kb "$redis_pid" VmRSS) redis_hwm=$(proc_kb "$redis_pid" VmHWM)

cleanup
leaks=$(sed -n 's/^resp-server: objects still alive at shutdown: //p' "$out/resp-server.log")

# ---- the table -----------------------------------------------------------------
# Rows of every csv as: server depth test rps p50 p99 (the LPUSH that only
# fills the list for LRANGE is left out).
for f in "$out"/*.csv; do
	[ -s "$f" ] || continue
	b=$(basename "$f" .csv)
	s=${b%%-*} d=${b#*-P} d=${d%%-*}
	awk -F, -v s="$s" -v d="$d" 'NR > 1 {
		gsub(/"/, ""); t = $1
		if (t ~ /needed to benchmark/) next
		sub(/ .*/, "", t)
		print s, d, t, $2, $5, $7 }' "$f"
done >"$out/runs.txt"

{
	printf '%-10s %3s %14s %14s %7s %19s %19s\n' command -P "refstore req/s" \
		"redis req/s" ratio "refstore p50/p99" "redis p50/p99"
	awk -v order="$(echo "$tests" | tr 'a-z,' 'A-Z ')" '
	function median(list,   v, n, i, j, x) {
		n = split(list, v, " ")
		for (i = 2; i <= n; i++) {	# insertion sort: n is small
			x = v[i] + 0
			for (j = i - 1; j >= 1 && v[j] + 0 > x; j--)
				v[j + 1] = v[j]
			v[j + 1] = x
		}
		if (n == 0) return -1
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	{
		k = $1 SUBSEP $2 SUBSEP $3
		rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
		if (!($2 in seen)) { seen[$2] = 1; depths[++nd] = $2 }
	}
	END {
		nt = split(order, tl, " ")
		for (i = 1; i <= nd; i++) for (j = 1; j <= nt; j++) {
			t = tl[j]; d = depths[i]
			a = "refstore" SUBSEP d SUBSEP t; b = "redis" SUBSEP d SUBSEP t
			if (!(a in rps) && !(b in rps)) continue
			ra = median(rps[a]); rb = median(rps[b])
			printf "%-10s %3s %14.0f %14.0f %7s %7.3f/%7.3f ms %7.3f/%7.3f ms\n",
				t, d, ra, rb, (rb > 0 && ra >= 0) ? sprintf("%.2f", ra / rb) : "-",
				median(p50[a]), median(p99[a]), median(p50[b]), median(p99[b])
		}
	}' "$out/runs.txt"
	echo "(medians over $rounds round(s); latencies in ms from redis-benchmark --csv;" \
		"ratio = refstore / redis requests/s)"
	echo "refstore: ${stops:-?} stops of the world, pauses ${ptot:-?} us in all," \
		"${pmax:-?} us at most (time to safepoint at most ${ttsp:-?} us)"
	printf '%s\n' "$gc_info" | sed -n 's/^\(gen[0-9]\):collections=\([0-9]*\),collected=\([0-9]*\),.*pause_total_us=\([0-9]*\),pause_max_us=\([0-9]*\).*/refstore: \1: \2 collections, \3 collected, pauses \4 us in all, \5 us at most/p'
	echo "RSS at the end (peak): refstore $(( ${rs_rss:-0} / 1024 )) MiB" \
		"($(( ${rs_hwm:-0} / 1024 )) MiB), redis $(( ${redis_rss:-0} / 1024 )) MiB" \
		"($(( ${redis_hwm:-0} / 1024 )) MiB)"
	echo "resp-server: objects still alive at shutdown: ${leaks:-?}"
} | tee "$out/table.txt"

[ "${leaks:-x}" = 0 ] || failed=1
exit $failed
