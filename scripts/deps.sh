#!/usr/bin/env bash
# shellcheck disable=SC2317 # the checks below are called through eval
# deps.sh - the one place that knows what each part of the build needs and
# which Debian package brings it.
#
#   scripts/deps.sh [--check] GROUP...
#
# Groups:
#   build  the library and its tests: pkg-config, prove (perl), liburcu
#          (qsbr, cds)                                             required
#   bench  mimalloc and jemalloc (bench_alloc's peers)             required
#          the Boehm GC, python3, gnuplot (a peer, the summary, the chart)
#                                                                  optional
#   demo   the Boehm GC (the other side), gnuplot (the chart)      optional
#   resp   redis-server (the peer), redis-benchmark and redis-cli
#          (redis-tools) for make resp-bench                        required
#   fuzz   clang with libFuzzer                                    required
#   model  spin                                                    required
#   ci     everything .ci/run uses: all of the above, all required, plus
#          the C and C++ compilers, make and valgrind
#
# Each item is checked by what the build uses (a command, a pkg-config
# name, a header, a probe compile), not by package name.  When something is
# missing and this runs as root where apt-get exists, the missing packages
# are installed (after one apt-get update), then checked again.  Otherwise,
# or with --check, one line names what is missing and the apt-get command.
# The exit status is 1 when a required item is still missing; a missing
# optional item only drops what needs it (the benchmarks and the demo say
# so when they run).
#
# Environment: PROVE (default prove) and FUZZ_CC (default clang), as in the
# Makefile.
set -u

PROVE=${PROVE:-prove}
FUZZ_CC=${FUZZ_CC:-clang}

usage() {
	echo "usage: $0 [--check] {build|bench|demo|resp|fuzz|model|ci}..." >&2
	exit 2
}

# ---- checks: each returns 0 when the thing is there ----------------------
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pc() { have_cmd pkg-config && pkg-config --exists "$1" 2>/dev/null; }
have_file() { [ -f "$1" ]; }
# The Boehm GC as the Makefile finds it (BENCH_GC_BOEHM).
have_boehm() { have_pc bdw-gc || [ -f /usr/include/gc.h ]; }
# clang that links a libFuzzer program (the runtime is a separate package).
have_fuzzer() {
	have_cmd "$FUZZ_CC" || return 1
	local dir rc
	dir=$(mktemp -d) || return 1
	echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' \
		>"$dir/probe.c"
	"$FUZZ_CC" "$dir/probe.c" -fsanitize=fuzzer -o "$dir/probe" >/dev/null 2>&1
	rc=$?
	rm -rf "$dir"
	return "$rc"
}

# ---- the items ------------------------------------------------------------
# One per line: need|check|packages|what
#   need: req (the group fails without it) or opt (only what needs it is
#   skipped); check: a shell command from above.
items() {
	case $1 in
	build) cat <<-EOF
		req|have_cmd pkg-config|pkg-config|pkg-config
		req|have_cmd $PROVE|perl|prove
		req|have_pc liburcu-qsbr|liburcu-dev|liburcu-qsbr
		req|have_pc liburcu-cds|liburcu-dev|liburcu-cds
		EOF
		;;
	bench) cat <<-EOF
		req|have_file /usr/include/mimalloc.h|libmimalloc-dev|mimalloc
		req|have_pc jemalloc|libjemalloc-dev|jemalloc
		opt|have_boehm|libgc-dev|the Boehm GC
		opt|have_cmd python3|python3|python3
		opt|have_cmd gnuplot|gnuplot-nox|gnuplot
		EOF
		;;
	demo) cat <<-EOF
		opt|have_boehm|libgc-dev|the Boehm GC
		opt|have_cmd gnuplot|gnuplot-nox|gnuplot
		EOF
		;;
	resp) cat <<-EOF
		req|have_cmd redis-server|redis-server|redis-server
		req|have_cmd redis-benchmark|redis-tools|redis-benchmark
		req|have_cmd redis-cli|redis-tools|redis-cli
		EOF
		;;
	fuzz) cat <<-EOF
		req|have_fuzzer|clang libclang-rt-14-dev|$FUZZ_CC with libFuzzer
		EOF
		;;
	model) cat <<-EOF
		req|have_cmd spin|spin|spin
		EOF
		;;
	ci)
		cat <<-EOF
			req|have_cmd cc|build-essential|cc
			req|have_cmd make|build-essential|make
			req|have_cmd g++|g++|g++
			req|have_cmd valgrind|valgrind|valgrind
		EOF
		local g
		for g in build bench demo resp fuzz model; do
			items "$g" | sed 's/^opt|/req|/'
		done
		;;
	*) usage ;;
	esac
}

check_only=0
groups=()
for a in "$@"; do
	case $a in
	--check) check_only=1 ;;
	-h | --help) usage ;;
	*) items "$a" >/dev/null || exit 2; groups+=("$a") ;;
	esac
done
[ ${#groups[@]} -gt 0 ] || usage

# All the groups' items, each check once (required wins over optional).
list=$(for g in "${groups[@]}"; do items "$g"; done |
	awk -F'|' '!($2 in need) { order[++n] = $2 }
		$1 == "req" || !($2 in need) { need[$2] = $1; line[$2] = $0 }
		END { for (i = 1; i <= n; i++) print line[order[i]] }')

# Sets missing_req / missing_opt (package names, once each) and
# missing_what (for the message).
scan() {
	missing_req="" missing_opt="" missing_what=""
	local need check debs what d
	while IFS='|' read -r need check debs what; do
		[ -n "$check" ] || continue
		eval "$check" && continue
		missing_what="$missing_what${missing_what:+, }$what"
		[ "$need" = opt ] && missing_what="$missing_what (optional)"
		for d in $debs; do
			case " $missing_req $missing_opt " in *" $d "*) continue ;; esac
			if [ "$need" = req ]; then missing_req="$missing_req $d"
			else missing_opt="$missing_opt $d"; fi
		done
	done <<-EOF
		$list
	EOF
	missing_req=${missing_req# } missing_opt=${missing_opt# }
}

scan
[ -z "$missing_req$missing_opt" ] && exit 0

if [ $check_only = 0 ] && [ "$(id -u)" = 0 ] && have_cmd apt-get; then
	# One installer at a time: make -j may run two stamps, and other
	# builds may share the machine.  Another may have installed it meanwhile.
	if have_cmd flock; then
		exec 9>/tmp/refstore-deps.lock && flock 9
		scan
		[ -z "$missing_req$missing_opt" ] && exit 0
	fi
	debs="$missing_req${missing_req:+${missing_opt:+ }}$missing_opt"
	echo "refstore: installing $debs (for ${groups[*]})" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null ||
		echo "refstore: apt-get update failed; trying the packages known" >&2
	# All at once; if that fails (one package not to be had), each alone so
	# that the others still come.
	# shellcheck disable=SC2086
	if ! apt-get install -y -qq $debs >/dev/null; then
		for d in $debs; do
			apt-get install -y -qq "$d" >/dev/null ||
				echo "refstore: apt-get install $d failed" >&2
		done
	fi
	hash -r
	scan
	[ -z "$missing_req$missing_opt" ] && exit 0
fi

debs="$missing_req${missing_req:+${missing_opt:+ }}$missing_opt"
if [ -n "$missing_req" ]; then
	echo "refstore: ${groups[*]}: missing $missing_what; install with: apt-get install $debs" >&2
	exit 1
fi
echo "refstore: ${groups[*]}: missing $missing_what: what needs them is skipped; install with: apt-get install $debs" >&2
exit 0
