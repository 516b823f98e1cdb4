#!/usr/bin/env bash
# model/run.sh WORKDIR - check the Promela models in model/ with spin.
#
# For each model: spin -a, compile pan, run it, print one line per property
# (states stored, depth, time, verdict).  Then every seeded mutant must be
# caught (an error reported; where a check names one, that error).
# Everything generated (pan.c, pan, trails, logs) goes under WORKDIR, one
# directory per check; model/ is only read.
#
# Exit status: 0 when every check passed and every mutant was caught; 1 if a
# check found an error, a search was incomplete (depth or memory bound), a
# tool failed, or a mutant went unnoticed.
#
# Environment: MEMLIM (MiB for pan, default 2048).
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 WORKDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
work=$(cd "$1" && pwd)
memlim=${MEMLIM:-2048}
status=0

for tool in spin gcc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "model: $tool not found" >&2
		exit 1
	fi
done

now() { date +%s.%N; }

# check NAME MODEL EXPECT "SPIN_FLAGS" "CC_FLAGS" "PAN_FLAGS" ["WHAT"]
#   EXPECT is "pass" (no error, complete search) or "fail" (a mutant: spin
#   must report an error; if WHAT is given, pan's first error message must
#   contain it, so that the mutant is caught by the property meant to catch
#   it).  The verdict goes to DIR/result (text) and DIR/failed (present on
#   failure).
check() {
	local dir="$work/${1//[^A-Za-z0-9_=-]/-}"

	rm -rf "$dir"
	mkdir -p "$dir"
	if ! check1 "$@" >"$dir/result.tmp" 2>&1; then
		echo "$1: driver error" >>"$dir/result.tmp"
		touch "$dir/failed"
	fi
	mv "$dir/result.tmp" "$dir/result"
}

# print the verdict of check NAME
report() {
	local dir="$work/${1//[^A-Za-z0-9_=-]/-}"

	if [ ! -e "$dir/result" ]; then
		echo "$1: no result  FAIL"
		status=1
	fi
	cat "$dir/result" 2>/dev/null || true
	if [ -e "$dir/failed" ]; then
		status=1
	fi
}

check1() {
	local name=$1 model=$2 expect=$3 sflags=$4 cflags=$5 pflags=$6 want=${7:-}
	local dir="$work/${1//[^A-Za-z0-9_=-]/-}" t0 t1 secs out errors states depth what

	cp "$here/$model" "$dir/"
	# shellcheck disable=SC2086
	if ! (cd "$dir" && spin $sflags -a "$model") >"$dir/spin.log" 2>&1; then
		echo "$name: spin -a failed:"
		sed 's/^/    /' "$dir/spin.log"
		touch "$dir/failed"
		return
	fi
	# shellcheck disable=SC2086
	if ! (cd "$dir" && gcc -w -DMEMLIM="$memlim" $cflags -o pan pan.c) \
		>"$dir/cc.log" 2>&1; then
		echo "$name: compiling pan failed:"
		sed 's/^/    /' "$dir/cc.log"
		touch "$dir/failed"
		return
	fi
	t0=$(now)
	# shellcheck disable=SC2086
	(cd "$dir" && ./pan $pflags) >"$dir/pan.out" 2>&1 || true
	t1=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	out="$dir/pan.out"
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)
	states=$(awk '/states, stored/ { print $1; exit }' "$out")
	depth=$(sed -n 's/.*depth reached \([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)
	what=$(sed -n 's/^pan:1: \(.*\) (at depth.*/\1/p' "$out" | head -n 1)
	: "${states:=?}" "${depth:=?}"

	if [ -z "$errors" ]; then
		printf '%-40s no verdict (pan crashed?)  FAIL\n' "$name"
		tail -n 20 "$out" | sed 's/^/    /'
		touch "$dir/failed"
		return
	fi
	if [ "$expect" = pass ]; then
		if [ "$errors" -ne 0 ]; then
			printf '%-40s states=%-9s depth=%-4s %6ss  errors=%s (%s)  FAIL\n' \
				"$name" "$states" "$depth" "$secs" "$errors" "$what"
			echo "    trail: $dir/$model.trail (replay: cd $dir && spin $sflags -t -p $model)"
			touch "$dir/failed"
		elif grep -qE 'search depth too small|Search not completed|out of memory|reached -DMEMLIM' "$out"; then
			printf '%-40s states=%-9s depth=%-4s %6ss  errors=0 but search INCOMPLETE  FAIL\n' \
				"$name" "$states" "$depth" "$secs"
			grep -E 'too small|not completed|memory|MEMLIM' "$out" | sed 's/^/    /'
			touch "$dir/failed"
		else
			printf '%-40s states=%-9s depth=%-4s %6ss  errors=0  PASS\n' \
				"$name" "$states" "$depth" "$secs"
		fi
	else
		if [ "$errors" -gt 0 ] && [ -n "$want" ] &&
			[[ "$what" != *"$want"* ]]; then
			printf '%-40s caught, but not by "%s": %s (states=%s, %ss)  FAIL\n' \
				"$name" "$want" "${what:-error}" "$states" "$secs"
			touch "$dir/failed"
		elif [ "$errors" -gt 0 ]; then
			printf '%-40s caught: %s (states=%s, %ss)\n' \
				"$name" "${what:-error}" "$states" "$secs"
		else
			printf '%-40s NOT caught (states=%s, %ss)  FAIL\n' \
				"$name" "$states" "$secs"
			touch "$dir/failed"
		fi
	fi
}

# pan's compile flags.  pan.c of brc.pml is large (every inline expanded):
# -O2 costs more to compile than it saves on its short searches.
# The world safety search stores some 19 million states: -DCOLLAPSE
# halves its memory (to about 0.9 GiB) for a few seconds more.
safety="-O2 -DSAFETY -DCOLLAPSE"
np="-O2 -DNP"
safety_fast="-O0 -DSAFETY"
np_fast="-O0 -DNP"

echo "model: spin $(spin -V | sed -n 's/^Spin Version \([^ ]*\).*/\1/p'), work dir $work"
start=$(now)

# run NAME ...: check, then print its verdict
run() {
	check "$@"
	report "$1"
}

# Model 1: the stop-the-world handshake (threads/world.c).  The fairness
# search costs about five times the safety one, so it runs with a smaller
# budget of actions per thread.
run "world assertions+deadlock B=3" world.pml pass "-DBUDGET=3" "$safety" "-m200000"
run "world fair termination B=1" world.pml pass "-DBUDGET=1" "$np" "-m200000 -l -f"
# Model 2: the biased count and its merge (lib/object.c, threads/thread.c)
run "brc assertions+deadlock+leak" brc.pml pass "" "$safety_fast" "-m200000"
run "brc fair termination" brc.pml pass "" "$np_fast" "-m200000 -l -f"
# Seeded bugs: each must be reported
run "mutant world MUTANT_ONLINE_NO_CHECK" world.pml fail \
	"-DMUTANT_ONLINE_NO_CHECK" "$safety_fast" "-m200000"
run "mutant world MUTANT_STOPPER_NO_PARK" world.pml fail \
	"-DMUTANT_STOPPER_NO_PARK" "$safety_fast" "-m200000"
run "mutant world MUTANT_WAKE_UNDER_QLOCK" world.pml fail \
	"-DMUTANT_WAKE_UNDER_QLOCK" "$safety_fast" "-m200000" \
	"assertion violated (((qlock[0]!=me)"
run "mutant brc MUTANT_TID_AFTER_CAS" brc.pml fail \
	"-DMUTANT_TID_AFTER_CAS" "$safety_fast" "-m200000"
run "mutant brc MUTANT_NO_GONE_CHECK" brc.pml fail \
	"-DMUTANT_NO_GONE_CHECK" "$safety_fast" "-m200000"
# ... by (Q), an OFFLINE or LEASED owner has an empty queue (brc.pml)
run "mutant brc MUTANT_OFFLINE_UNLOCKED" brc.pml fail \
	"-DMUTANT_OFFLINE_UNLOCKED" "$safety_fast" "-m200000" \
	"(o_state==2)||(o_state==3)))||(o_qn==0)"

total=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
if [ "$status" -eq 0 ]; then
	echo "model: all checks passed, all mutants caught (${total}s)"
else
	echo "model: FAILED (${total}s; logs and trails under $work)"
fi
exit "$status"
