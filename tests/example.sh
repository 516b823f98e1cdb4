#!/bin/sh
# example.sh - the README's example program runs and leaks nothing.
B=${B:-build/release}
echo "1..2"
out=$("$B/tests/example" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
[ $rc -eq 0 ] && echo "ok 1 - the example runs" || echo "not ok 1 - the example exited $rc"
printf '%s\n' "$out" | grep -q "objects still alive at shutdown: 0$" \
	&& echo "ok 2 - and shuts down with nothing alive" \
	|| echo "not ok 2 - objects left alive"
