#!/usr/bin/env bash
# What blktrace costs: runs $BUILD/bench/bench-blktrace (built by make;
# this script builds nothing) with trace files on tmpfs (/dev/shm), writes
# bench/results/blktrace.csv and prints the figures against the targets
# of docs/blktrace.md:
#   - null_blk irqmode=0, 4k random reads, one thread: extra CPU ns of the
#     submitting thread per traced event (target <= 25 ns), tracing off and
#     on in the same run, best of the rounds;
#   - the uring driver on a tmpfs file, 4k random reads at iodepth 32: IOPS
#     lost (target <= 3%) and dropped events (target 0);
#   - two threads of unlimited null_blk load: drops per million events at
#     the default buffers (512 KiB x 4) and at small ones (4 KiB x 2).
# Arguments are passed to the program (--rounds N, --ios N, --seconds S).
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
trap 'rm -f "$notes"' EXIT

"$bin" --dir /dev/shm "$@" >"$out/blktrace.csv" 2>"$notes"
# the figures move with the machine's load: keep it beside them
echo "machine,$(nproc)-cpus,loadavg_1min,$(cut -d' ' -f1 /proc/loadavg)" >>"$out/blktrace.csv"
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
drops=$(val uring dropped)
echo "per traced event: ${ns} ns on the submitting thread (target <= 25: $(verdict "$ns" '<=' 25))"
echo "uring qd32 on tmpfs: ${lost}% IOPS lost (target <= 3: $(verdict "$lost" '<=' 3)), ${drops} dropped (target 0: $(verdict "$drops" '==' 0))"
dpm() {
	awk -F, -v c="$1" '$1 == "drops" && $2 == c && $3 == "drops_per_million" { print $4 }' \
		"$out/blktrace.csv"
}
echo "drops per million under unlimited load: default $(dpm default-512KiBx4), small $(dpm small-4KiBx2), default without files $(dpm default-512KiBx4-nofiles)"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo "wrote $out/blktrace.csv"
