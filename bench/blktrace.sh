#!/usr/bin/env bash
# What blktrace costs: runs $BUILD/bench/bench-blktrace (built by make;
# this script builds nothing) with trace files on tmpfs (/dev/shm), writes
# bench/results/blktrace.csv and prints the figures against the targets
# of docs/blktrace.md:
#   - null_blk irqmode=0, 4k random reads, one thread: extra CPU ns of the
#     submitting thread per traced event (target <= 25 ns), tracing off and
#     on in the same run, best of the rounds;
#   - the uring driver on a tmpfs file, 4k random reads at iodepth 32
#     from a load thread that runs throughout: IOPS lost (target <= 3%)
#     and dropped events (target 0); 200 pairs (--pairs) of 0.25 s
#     windows, tracing off and on in an order swapped from pair to pair,
#     the median loss of the pairs (the load's IOPS move by a third from
#     second to second on two shared cores; with neither window traced,
#     40 pairs read -3..+3.5% and 200 read 0.1%) and the loss of all
#     traced windows against all untraced ones (what a long trace costs;
#     the target is judged on the larger of the two), with CPU ns per I/O
#     off and on, for the process and for each kind of thread;
#   - two threads of unlimited null_blk load: drops per million events at
#     the default buffers (512 KiB x 4) and at small ones (4 KiB x 2);
#   - the same load paced (as blkbench's/fio's rate_iops) and stepped from
#     10k IOPS up (or down) until drops appear, then bisected: the highest
#     event rate traced with 0 drops, at both buffer settings (one row per
#     step, "sweep,CONFIG@RATEiops,...", so the steps can be checked).
# Arguments are passed to the program (--rounds N, --pairs N, --ios N,
# --seconds S, --only cost|uring|drops|sweep). With --only PART the
# part's rows replace its rows of the existing CSV, with a load row of
# its own (loadavg_1min_PART); the other parts' rows and load stay.
# A missed target is reported, not fatal: the machine is shared and noisy.
set -euo pipefail

BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bin=$BUILD/bench/bench-blktrace
out=bench/results
if [ ! -x "$bin" ]; then
	echo "blktrace.sh: $bin not found; run make first" >&2
	exit 1
fi
mkdir -p "$out"
notes=$(mktemp)
new=$(mktemp)
trap 'rm -f "$notes" "$new" "$new.m"' EXIT
only=
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
	[ "${args[i]}" = --only ] && only=${args[i + 1]}
done

"$bin" --dir /dev/shm "$@" >"$new" 2>"$notes"
# the figures move with the machine's load: keep it beside them
load=$(cut -d' ' -f1 /proc/loadavg)
if [ -n "$only" ] && [ -s "$out/blktrace.csv" ]; then
	{
		awk -F, -v p="$only" 'NR == 1 || ($1 != p &&
			!($1 == "machine" && $3 == "loadavg_1min_" p))' \
			"$out/blktrace.csv"
		tail -n +2 "$new"
		echo "machine,$(nproc)-cpus,loadavg_1min_$only,$load"
	} >"$new.m"
	cp "$new.m" "$out/blktrace.csv"
else
	cp "$new" "$out/blktrace.csv"
	echo "machine,$(nproc)-cpus,loadavg_1min,$load" >>"$out/blktrace.csv"
fi
grep -v 'dropped events' "$notes" >&2 || true
column -s, -t <"$out/blktrace.csv" 2>/dev/null || cat "$out/blktrace.csv"

val() {
	awk -F, -v t="$1" -v m="$2" '$1 == t && $3 == m { print $4 }' \
		"$out/blktrace.csv"
}
verdict() {	# verdict VALUE OP LIMIT
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = (op == "<=") ? v + 0 <= l + 0 : v + 0 == l + 0
		print ok ? "met" : "NOT met" }'
}
ns=$(val cost submitter_ns_per_event)
lost=$(val uring iops_lost_pct)
lost_all=$(val uring iops_lost_pct_all)
worst=$(awk -v a="$lost" -v b="$lost_all" 'BEGIN { print (a + 0 > b + 0) ? a : b }')
drops=$(val uring dropped)
echo "per traced event: ${ns} ns on the submitting thread (target <= 25: $(verdict "$ns" '<=' 25))"
echo "uring qd32 on tmpfs: IOPS lost ${lost}% (median of the pairs), ${lost_all}% (all windows) (target <= 3: $(verdict "$worst" '<=' 3)), ${drops} dropped (target 0: $(verdict "$drops" '==' 0))"
dpm() {
	awk -F, -v c="$1" '$1 == "drops" && $2 == c && $3 == "drops_per_million" { print $4 }' \
		"$out/blktrace.csv"
}
echo "drops per million under unlimited load: default $(dpm default-512KiBx4), small $(dpm small-4KiBx2), default without files $(dpm default-512KiBx4-nofiles)"
drop0() {
	awk -F, -v c="$1" -v m="$2" '$1 == "sweep" && $2 == c && $3 == m { print $4 }' \
		"$out/blktrace.csv"
}
for c in default-512KiBx4 small-4KiBx2; do
	limit=""
	[ "$(drop0 "$c" limited_by_machine)" = 1 ] &&
		limit=" (a floor: the machine ran out of I/O before any drop)"
	echo "highest rate traced with 0 drops, $c: $(drop0 "$c" max_events_per_s_0_drops) events/s ($(drop0 "$c" max_paced_iops_0_drops) IOPS paced)$limit"
done
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo "wrote $out/blktrace.csv"
