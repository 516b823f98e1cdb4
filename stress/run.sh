#!/usr/bin/env bash
# stress/run.sh - runs the stress programs (docs/testing.md).
#
#   stress/run.sh brief   <threads> <seconds> <sanitizer-seconds>
#       every program once in build/release, then once in build/thread
#       (TSan) and build/address (ASan+UBSan) with 2 threads and the
#       shorter time; a new seed each run.  Exit 1 if any run failed.
#   stress/run.sh torture <threads> <seconds-per-run> <total-seconds>
#       runs programs one after another until the total time is used,
#       rotating program, build (release twice as often as each sanitizer)
#       and seed; stops at the first failure.  A summary (runs, seconds
#       and operations per program) goes to build/torture/summary.txt, one
#       line per run (variant, program, threads, seconds, seed, verdict,
#       operations) to build/torture/runs.txt.
#
# Each run is limited to 4x its time plus 60 s: a run that takes longer is
# reported as hung (a deadlock or a stall), with the line that replays it.
# The programs are the files build/<variant>/stress/stress_*.
set -u
cd "$(dirname "$0")/.."

mode=${1:-brief}
threads=${2:-3}
secs=${3:-4}
third=${4:-2}

new_seed() { od -An -N8 -tu8 /dev/urandom | tr -d ' '; }

programs() { ls "build/$1/stress/" 2>/dev/null | grep '^stress_[a-z_]*$' | sort; }

# run <variant> <program> <threads> <seconds> <seed>: prints the program's
# output prefixed with the variant; returns its status (124 = hung).
last_ops=0
run() {
	local v=$1 p=$2 n=$3 s=$4 seed=$5 out rc limit
	limit=$(awk -v s="$s" 'BEGIN { printf "%d", s * 4 + 60 }')
	out=$(mktemp)
	timeout -s KILL "$limit" "build/$v/stress/$p" "$n" "$s" "$seed" >"$out" 2>&1
	rc=$?
	sed "s/^/[$v] /" "$out"
	last_ops=$(grep -o ' ops=[0-9]*' "$out" | tail -1 | cut -d= -f2)
	last_ops=${last_ops:-0}
	if [ "$rc" = 137 ]; then
		echo "[$v] $p: HUNG (no verdict after $limit s); replay with:" \
			"build/$v/stress/$p $n $s $seed"
	elif [ "$rc" != 0 ] && ! grep -q ': FAIL' "$out"; then
		echo "[$v] $p: died with status $rc (no verdict); replay with:" \
			"build/$v/stress/$p $n $s $seed"
	fi
	rm -f "$out"
	return "$rc"
}

case $mode in
brief)
	failed="" start=$(date +%s)
	for v in release thread address; do
		if [ "$v" = release ]; then n=$threads t=$secs; else n=2 t=$third; fi
		for p in $(programs "$v"); do
			run "$v" "$p" "$n" "$t" "$(new_seed)" || failed="$failed $v/$p"
		done
	done
	echo "stress: $(( $(date +%s) - start )) s"
	if [ -n "$failed" ]; then
		echo "stress: FAILED:$failed"
		exit 1
	fi
	echo "stress: all passed"
	;;
torture)
	total=$third
	mkdir -p build/torture
	sum=build/torture/summary.txt log=build/torture/runs.txt
	: >"$log"
	start=$(date +%s) i=0 runs=0
	declare -A nruns nsecs nops
	variants=(release thread release address)
	mapfile -t progs < <(programs release)
	[ "${#progs[@]}" -gt 0 ] || { echo "torture: no programs built"; exit 2; }
	while [ $(( $(date +%s) - start )) -lt "$total" ]; do
		p=${progs[$(( i % ${#progs[@]} ))]}
		v=${variants[$(( (i / ${#progs[@]}) % ${#variants[@]} ))]}
		i=$((i + 1))
		[ -x "build/$v/stress/$p" ] || continue
		if [ "$v" = release ]; then n=$threads; else n=2; fi
		t0=$(date +%s) seed=$(new_seed)
		if ! run "$v" "$p" "$n" "$secs" "$seed"; then
			echo "$v $p $n $secs $seed FAIL" >>"$log"
			echo "torture: FAILED after $runs runs, $(( $(date +%s) - start )) s"
			exit 1
		fi
		echo "$v $p $n $secs $seed pass $last_ops" >>"$log"
		runs=$((runs + 1))
		k="$v/$p"
		nruns[$k]=$(( ${nruns[$k]:-0} + 1 ))
		nsecs[$k]=$(( ${nsecs[$k]:-0} + $(date +%s) - t0 ))
		nops[$k]=$(( ${nops[$k]:-0} + last_ops ))
	done
	{
		echo "torture: $runs runs, $(( $(date +%s) - start )) s, all passed ($(date -u +%FT%TZ))"
		for k in $(printf '%s\n' "${!nruns[@]}" | sort); do
			printf '  %-34s %4d runs %6d s %14d ops\n' "$k" "${nruns[$k]}" \
				"${nsecs[$k]}" "${nops[$k]}"
		done
	} | tee "$sum"
	;;
*)
	echo "usage: stress/run.sh brief|torture threads seconds seconds2" >&2
	exit 2
	;;
esac
