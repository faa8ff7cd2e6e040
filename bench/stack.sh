#!/usr/bin/env bash
# Stack cost: what the block layer costs per I/O, measured in one run against
# its floor and a peer.
#
#   1. 4k randread, iodepth 64, one thread, null irqmode=0 memory_backed=0:
#      blkbench through the full blk-mq path, blkbench --bypass (the driver
#      alone), and fio --ioengine=null (fio's own loop with no device).
#      The block layer runs with --ioscheduler=none (the core's cost; a
#      one-queue device now defaults to mq-deadline, as in the kernel: that
#      run is reported beside it).
#   2. Two threads on two hw queues (submit_queues=2, one CPU each) against
#      one thread on the same device. Target: 1.7x. The same pair with
#      --bypass is the ceiling this machine gives two threads at all.
#   3. Merging: 4k sequential writes, iodepth 32, submitted under one plug;
#      the mean request size reaching the driver (diskstats). Target: 128 KiB.
#      The same without plugging, for contrast.
#
# Writes bench/results/stack.csv (benchmark,config,value,unit) and, with
# gnuplot, bench/results/stack.png. RUNTIME (seconds, default 5) per run;
# each IOPS figure is the median of REPEAT (default 3) rounds, the configs
# interleaved so that noise from the rest of the machine hits them alike.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
RUNTIME=${RUNTIME:-5}
REPEAT=${REPEAT:-3}
bb=$BUILD/tools/blkbench
py=/usr/bin/python3
out=$top/bench/results
csv=$out/stack.csv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$bb" ] || { echo "stack.sh: $bb is not built (make first)" >&2; exit 1; }
[ -x "$py" ] || { echo "stack.sh: needs $py" >&2; exit 1; }
mkdir -p "$out"

# json FILE EXPR: evaluate EXPR with d = the JSON document in FILE
json() {
	"$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# blkbench NAME ARGS...: one run, JSON kept in $tmp/NAME.json
blkbench() {
	local name=$1
	shift
	echo "  blkbench $*" >&2
	"$bb" --eta=never --output-format=json --runtime="$RUNTIME" --time_based \
		"$@" >"$tmp/$name.json"
}

iops() { json "$tmp/$1.json" 'round(sum(j["read"]["iops"] + j["write"]["iops"] for j in d["jobs"]))'; }
ratio() { "$py" -c "print(f'{$1 / $2:.2f}')"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

null0="null:size=1G,irqmode=0,memory_backed=0"
null2="null:size=1G,irqmode=0,memory_backed=0,submit_queues=2"
have_fio=false
command -v fio >/dev/null && have_fio=true
$have_fio || echo "fio not found: the peer column stays empty" >&2

mq=() dl=() bp=() fo=() one=() two=() bone=() btwo=()
for round in $(seq "$REPEAT"); do
	echo "Round $round of $REPEAT, $RUNTIME s per run" >&2
	# stack cost: 4k randread, iodepth 64, one thread
	blkbench mq --name=blkmq --rw=randread --bs=4k --iodepth=64 \
		--filename=$null0 --ioscheduler=none
	mq+=("$(iops mq)")
	blkbench dl --name=blkmq-dl --rw=randread --bs=4k --iodepth=64 \
		--filename=$null0 --ioscheduler=mq-deadline
	dl+=("$(iops dl)")
	blkbench bypass --name=bypass --rw=randread --bs=4k --iodepth=64 \
		--filename=$null0 --bypass
	bp+=("$(iops bypass)")
	if $have_fio; then
		echo "  fio --ioengine=null ..." >&2
		fio --ioengine=null --rw=randread --bs=4k --iodepth=64 --size=1G \
			--time_based --runtime="$RUNTIME" --name=x \
			--output-format=json >"$tmp/fio.json"
		fo+=("$(json "$tmp/fio.json" 'round(d["jobs"][0]["read"]["iops"])')")
	fi
	# scaling: one CPU per job, two hw queues either way
	blkbench one --rw=randread --bs=4k --iodepth=64 --filename=$null2 \
		--cpus_allowed=0
	one+=("$(iops one)")
	blkbench two --rw=randread --bs=4k --iodepth=64 --filename=$null2 \
		--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
		--group_reporting
	two+=("$(iops two)")
	blkbench bone --rw=randread --bs=4k --iodepth=64 --filename=$null2 \
		--cpus_allowed=0 --bypass
	bone+=("$(iops bone)")
	blkbench btwo --rw=randread --bs=4k --iodepth=64 --filename=$null2 \
		--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split \
		--group_reporting --bypass
	btwo+=("$(iops btwo)")
done
mq_iops=$(median "${mq[@]}")
dl_iops=$(median "${dl[@]}")
bone_iops=$(median "${bone[@]}")
btwo_iops=$(median "${btwo[@]}")
bp_iops=$(median "${bp[@]}")
fio_iops=
$have_fio && fio_iops=$(median "${fo[@]}")
one_iops=$(median "${one[@]}")
two_iops=$(median "${two[@]}")
echo "  rounds: blk-mq ${mq[*]}; mq-deadline ${dl[*]}; bypass ${bp[*]}; fio ${fo[*]:-}; 1 thread ${one[*]}; 2 threads ${two[*]}; bypass 1 thread ${bone[*]}; bypass 2 threads ${btwo[*]}" >&2

# merging is deterministic: one round
echo "Merging (4k sequential writes, iodepth 32)" >&2
blkbench plug --rw=write --bs=4k --iodepth=32 --filename=$null0
blkbench noplug --rw=write --bs=4k --iodepth=32 --filename=$null0 \
	--iodepth_batch_submit=1
plug_kb=$(json "$tmp/plug.json" 'round(d["disk"]["mean_request_kb"], 1)')
noplug_kb=$(json "$tmp/noplug.json" 'round(d["disk"]["mean_request_kb"], 1)')

ns() { "$py" -c "print(f'{1e9 / $1:.1f}')"; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/,/ /g')
{
	echo "benchmark,config,value,unit"
	echo "meta,date,$(date -u +%Y-%m-%dT%H:%M:%SZ),"
	echo "meta,machine,$cpu ($(nproc) CPUs),"
	echo "meta,kernel,$(uname -r),"
	echo "meta,runs,median of $REPEAT x $RUNTIME s,"
	echo "stack_cost,blkbench blk-mq,$mq_iops,IOPS"
	echo "stack_cost,blkbench blk-mq mq-deadline,$dl_iops,IOPS"
	echo "stack_cost,blkbench --bypass,$bp_iops,IOPS"
	[ -z "$fio_iops" ] || echo "stack_cost,fio ioengine=null,$fio_iops,IOPS"
	echo "stack_cost,blkbench blk-mq,$(ns "$mq_iops"),ns/IO"
	echo "stack_cost,blkbench --bypass,$(ns "$bp_iops"),ns/IO"
	[ -z "$fio_iops" ] || echo "stack_cost,fio ioengine=null,$(ns "$fio_iops"),ns/IO"
	echo "stack_cost,block layer (blk-mq - bypass),$("$py" -c "print(f'{1e9 / $mq_iops - 1e9 / $bp_iops:.1f}')"),ns/IO"
	echo "stack_cost,blk-mq / bypass,$(ratio "$mq_iops" "$bp_iops"),x"
	[ -z "$fio_iops" ] || echo "stack_cost,blk-mq / fio null,$(ratio "$mq_iops" "$fio_iops"),x"
	echo "scaling,1 thread,$one_iops,IOPS"
	echo "scaling,2 threads 2 hw queues,$two_iops,IOPS"
	echo "scaling,2 threads / 1 thread,$(ratio "$two_iops" "$one_iops"),x"
	echo "scaling,bypass 1 thread,$bone_iops,IOPS"
	echo "scaling,bypass 2 threads,$btwo_iops,IOPS"
	echo "scaling,bypass 2 threads / 1 thread,$(ratio "$btwo_iops" "$bone_iops"),x"
	echo "merging,plug on (batch 32),$plug_kb,KiB"
	echo "merging,plug off (batch 1),$noplug_kb,KiB"
} >"$csv"

echo
echo "Stack cost, 4k randread qd64, one thread ($(date -u +%F), $(nproc) CPUs, median of $REPEAT):"
printf '  %-28s %12s IOPS %8s ns/IO\n' "blkbench (blk-mq)" "$mq_iops" "$(ns "$mq_iops")"
printf '  %-28s %12s IOPS %8s ns/IO\n' "blkbench mq-deadline" "$dl_iops" "$(ns "$dl_iops")"
printf '  %-28s %12s IOPS %8s ns/IO\n' "blkbench --bypass" "$bp_iops" "$(ns "$bp_iops")"
[ -z "$fio_iops" ] ||
	printf '  %-28s %12s IOPS %8s ns/IO\n' "fio --ioengine=null" "$fio_iops" "$(ns "$fio_iops")"
echo "  blk-mq / bypass = $(ratio "$mq_iops" "$bp_iops")x${fio_iops:+, blk-mq / fio null = $(ratio "$mq_iops" "$fio_iops")x}"
echo "Two threads, two hw queues / one thread = $(ratio "$two_iops" "$one_iops")x (target 1.7x); bypass: $(ratio "$btwo_iops" "$bone_iops")x"
echo "Merging, plug on: mean request $plug_kb KiB (target >= 128 KiB); plug off: $noplug_kb KiB"
echo "wrote $csv"

if command -v gnuplot >/dev/null; then
	grep -E '^(stack_cost|scaling),.*,IOPS$' "$csv" |
		awk -F, '{ printf "\"%s\" %s\n", $2 ($1 == "scaling" ? " (scaling)" : ""), $3 / 1e6 }' \
		>"$tmp/plot.dat"
	gnuplot <<EOF
set terminal png size 900,520 noenhanced
set output "$out/stack.png"
set title "blkstack: 4k randread on null_blk, MIOPS (higher is better)"
set style data histograms
set style fill solid 0.7
set boxwidth 0.8
set yrange [0:*]
set xtics rotate by 20 right
set bmargin 7
set ylabel "million IOPS"
unset key
plot "$tmp/plot.dat" using 2:xtic(1)
EOF
	echo "wrote $out/stack.png"
fi
