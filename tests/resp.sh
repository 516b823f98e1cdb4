#!/bin/sh
# resp.sh - resp-server (bench/resp/) answers every command it implements
# as Redis does, checked with redis-cli, and shuts down on SIGTERM with no
# refstore object left alive.  Skipped when redis-cli is not installed
# (scripts/deps.sh resp installs it; this test installs nothing).
B=${B:-build/release}
server=$B/bench/resp-server

if ! command -v redis-cli >/dev/null 2>&1; then
	echo "1..0 # SKIP redis-cli is not installed (scripts/deps.sh resp)"
	exit 0
fi
if [ ! -x "$server" ]; then
	echo "1..0 # SKIP $server is not built"
	exit 0
fi

log=$(mktemp) || exit 1
pid=""
stop() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		pid=""
	fi
}
trap 'stop; rm -f "$log"' EXIT
trap 'exit 1' INT TERM

# Port 0: the server binds a free port on 127.0.0.1 and prints it.
"$server" --port 0 --threads 2 2>"$log" &
pid=$!
port=""
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "1..1"
	echo "not ok 1 - resp-server started"
	sed 's/^/# /' "$log"
	exit 0
fi

n=0
cli() { timeout 10 redis-cli --no-raw -h 127.0.0.1 -p "$port" "$@" 2>&1; }
# check DESCRIPTION EXPECTED ARGS...: the reply, as redis-cli --no-raw
# prints it, is EXPECTED.
check() {
	desc=$1 want=$2
	shift 2
	n=$((n + 1))
	got=$(cli "$@")
	if [ "$got" = "$want" ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		printf '%s\n' "want: $want" "got:  $got" | sed 's/^/#   /'
	fi
}
# check_raw DESCRIPTION VALUE: SET then GET returns VALUE byte for byte.
check_raw() {
	n=$((n + 1))
	cli set "v$n" "$2" >/dev/null
	got=$(timeout 10 redis-cli --raw -h 127.0.0.1 -p "$port" get "v$n" 2>&1)
	if [ "$got" = "$2" ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1 (got ${#got} bytes, want ${#2})"
	fi
}
# bytes N: N letters
bytes() { head -c "$1" /dev/zero | tr '\0' a; }

check "PING" "PONG" ping
check "PING with a message" '"hi"' ping hi
check "SET" "OK" set k hello
check "GET" '"hello"' get k
check "GET of a missing key is nil" "(nil)" get nokey
check "SET replaces" "OK" set k world
check "GET sees the new value" '"world"' get k
check "INCR of a missing key" "(integer) 1" incr n
check "INCR again" "(integer) 2" incr n
check "INCR of a non-integer" "(error) ERR value is not an integer or out of range" incr k
check "SET a negative integer" "OK" set m -5
check "INCR of it" "(integer) -4" incr m
check "MGET" "$(printf '1) "world"\n2) "2"\n3) (nil)')" mget k n nokey
check "EXISTS counts the keys that exist" "(integer) 2" exists k n nokey
check "DBSIZE" "(integer) 3" dbsize
check "LPUSH creates a list" "(integer) 3" lpush L a b c
check "LPUSH adds in front" "(integer) 4" lpush L d
check "LRANGE 0 -1" "$(printf '1) "d"\n2) "c"\n3) "b"\n4) "a"')" lrange L 0 -1
check "LRANGE 1 2" "$(printf '1) "c"\n2) "b"')" lrange L 1 2
check "LRANGE -2 -1" "$(printf '1) "b"\n2) "a"')" lrange L -2 -1
check "LRANGE past the end" "(empty array)" lrange L 5 9
check "LRANGE of a missing key" "(empty array)" lrange nolist 0 -1
# shellcheck disable=SC2046 # one argument per number
check "LPUSH of 100 values (several chunks)" "(integer) 100" lpush big $(seq 1 100)
check "LRANGE across chunks" "$(printf '1) "70"\n2) "69"\n3) "68"\n4) "67"')" lrange big 30 33
check "LRANGE to the oldest" "$(printf '1) "2"\n2) "1"')" lrange big 98 200
check "GET of a list" "(error) WRONGTYPE Operation against a key holding the wrong kind of value" get L
check "LPUSH onto a string" "(error) WRONGTYPE Operation against a key holding the wrong kind of value" lpush k x
check "INCR of a list" "(error) WRONGTYPE Operation against a key holding the wrong kind of value" incr L
check "MGET of a list is nil" "1) (nil)" mget L
check_raw "a 16-byte value (the smallest class)" "$(bytes 16)"
check_raw "a 17-byte value (the next class)" "$(bytes 17)"
check_raw "a 1024-byte value (the largest class)" "$(bytes 1024)"
check_raw "a 1025-byte value (malloc'd)" "$(bytes 1025)"
check_raw "a 100000-byte value (malloc'd)" "$(bytes 100000)"
check_raw "an empty value" ""
check "a key longer than 1024 bytes is refused" \
	"(error) ERR key longer than 1024 bytes (the most a refstore map takes)" \
	set "$(bytes 1025)" x
check "DEL counts what it removed" "(integer) 2" del k L nokey
check "GET after DEL" "(nil)" get k
check "FLUSHALL" "OK" flushall
check "DBSIZE after FLUSHALL" "(integer) 0" dbsize
check "GET after FLUSHALL" "(nil)" get n
check "an unknown command" "(error) ERR unknown command 'nosuch'" nosuch
check "a wrong number of arguments" \
	"(error) ERR wrong number of arguments for 'GET' command" get a b
n=$((n + 1))
info=$(cli info | tr -d '\r')
if printf '%s\n' "$info" | grep -q '^world_stops:[0-9]' &&
	printf '%s\n' "$info" | grep -q '^pause_max_us:[0-9]' &&
	printf '%s\n' "$info" | grep -q '^gen2:collections=[0-9]' &&
	printf '%s\n' "$info" | grep -q '^used_memory_rss:[1-9]'; then
	echo "ok $n - INFO has refstore's statistics and the RSS"
else
	echo "not ok $n - INFO has refstore's statistics and the RSS"
	printf '%s\n' "$info" | sed 's/^/#   /' | head -20
fi

# Concurrent clients on both workers: INCR and LPUSH of one key from 8
# connections, pipelined, must lose no update (the key's lock).
n=$((n + 1))
if command -v redis-benchmark >/dev/null 2>&1; then
	cli flushall >/dev/null
	timeout 60 redis-benchmark -h 127.0.0.1 -p "$port" -t incr,lpush \
		-n 2000 -c 8 -P 4 -q >/dev/null 2>&1
	brc=$?
	got_incr=$(cli get "counter:__rand_int__")
	got_list=$(timeout 10 redis-cli --raw -h 127.0.0.1 -p "$port" lrange mylist 0 -1 | wc -l)
	if [ $brc = 0 ] && [ "$got_incr" = '"2000"' ] && [ "$got_list" -eq 2000 ]; then
		echo "ok $n - 8 concurrent clients: 2000 INCR and 2000 LPUSH, none lost"
	else
		echo "not ok $n - 8 concurrent clients: 2000 INCR and 2000 LPUSH, none lost"
		echo "#   redis-benchmark exit $brc, counter $got_incr, list length $got_list"
	fi
else
	echo "ok $n # skip redis-benchmark is not installed"
fi

rc=""
stop
n=$((n + 1))
if [ "$rc" = 0 ] && grep -q "objects still alive at shutdown: 0$" "$log"; then
	echo "ok $n - SIGTERM: a clean stop, no object left alive"
else
	echo "not ok $n - SIGTERM: a clean stop, no object left alive (exit $rc)"
	sed 's/^/#   /' "$log"
fi
echo "1..$n"
