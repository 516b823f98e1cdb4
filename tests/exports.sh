#!/bin/sh
# exports.sh - the shared library exports the API (rs_*) and the few rs__
# helpers its inline fast paths call, and nothing else.
B=${B:-build/release}
lib=$B/librefstore.so.0
echo "1..2"
if [ ! -f "$lib" ]; then echo "Bail out! $lib not built"; exit 255; fi
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
other=$(printf '%s\n' "$syms" | grep -v -e '^rs_' -e '^rs__tls$' -e '^rs__incref_slow$' \
	-e '^rs__decref_slow$' -e '^rs__get_refused$' -e '^$' || true)
if [ -z "$other" ]; then echo "ok 1 - only the API is exported"
else echo "not ok 1 - unexpected exports:"; printf '#   %s\n' $other; fi
internal=$(printf '%s\n' "$syms" | grep '^rs__' | grep -v -e '^rs__tls$' \
	-e '^rs__incref_slow$' -e '^rs__decref_slow$' -e '^rs__get_refused$' || true)
if [ -z "$internal" ]; then echo "ok 2 - no internal rs__ function is exported"
else echo "not ok 2 - internal symbols exported:"; printf '#   %s\n' $internal; fi
