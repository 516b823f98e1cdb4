#!/bin/sh
# malloc_binding.sh - linking refstore leaves the host program's malloc as it
# was.  tests/host.c is built as a user would build it (the Makefile):
# against the shared library, and against the static one with the link line
# of `pkg-config --static --libs refstore`.  In both, the program's malloc
# must still be the C library's (the sanitizer runtime's in sanitizer builds,
# which replaces it by design): asked in the process with dlsym, and from the
# dynamic linker's own account of the program's malloc call (LD_DEBUG);
# and no jemalloc may have been brought into the process.  A third build,
# where the host links jemalloc itself (made when jemalloc is installed,
# outside sanitizer builds), must keep jemalloc's malloc, and have it.
B=${B:-build/release}
case "$B" in
*address*) libc_want='libasan' ;;
*thread*) libc_want='libtsan' ;;
*) libc_want='libc\.so' ;;
esac
echo "1..12"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # skip $1"; }

for kind in shared static jemalloc; do
	prog=$B/tests/host_$kind
	want=$libc_want je=no
	if [ "$kind" = jemalloc ]; then
		want='libjemalloc' je=yes
		if [ ! -x "$prog" ]; then
			for i in 1 2 3 4; do
				skip "$prog not built (sanitizer build, or no jemalloc)"
			done
			continue
		fi
	fi
	if [ ! -x "$prog" ]; then echo "Bail out! $prog not built"; exit 255; fi
	out=$("$prog" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed "s/^/# $kind: /"
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^alive at shutdown: 0$'; then
		ok "$kind: the host makes and frees small and large objects"
	else
		notok "$kind: the host failed (exit $rc)"
	fi
	from=$(printf '%s\n' "$out" | sed -n 's/^malloc from: //p')
	libc=$(printf '%s\n' "$out" | sed -n "s/^malloc is the C library's: //p")
	if printf '%s\n' "$from" | grep -q "$want" &&
		{ [ "$want" != 'libc\.so' ] || [ "$libc" = yes ]; }; then
		ok "$kind: malloc in the process is ${want%%\\*}'s ($from)"
	else
		notok "$kind: malloc in the process comes from $from, not ${want%%\\*}"
	fi
	# The dynamic linker's line for the program's own call to malloc.
	bind=$(LD_DEBUG=bindings "$prog" 2>&1 >/dev/null |
		grep "binding file $prog .*normal symbol \`malloc'" | head -1 |
		sed 's/.* to \([^ ]*\) .*/\1/')
	if printf '%s\n' "$bind" | grep -q "$want"; then
		ok "$kind: the program's malloc call binds to $bind"
	else
		notok "$kind: the program's malloc call binds to '$bind', not ${want%%\\*}"
	fi
	mallctl=$(printf '%s\n' "$out" | sed -n 's/^mallctl defined: //p')
	if [ "${mallctl%% *}" = $je ] && [ $je = yes ]; then
		ok "$kind: the host's own jemalloc is there ($mallctl)"
	elif [ "${mallctl%% *}" = $je ]; then
		ok "$kind: no jemalloc in the process"
	elif [ $je = yes ]; then
		notok "$kind: the host's jemalloc is missing: $mallctl"
	else
		notok "$kind: jemalloc is in the process: $mallctl"
	fi
done
