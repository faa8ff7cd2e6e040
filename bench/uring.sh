#!/usr/bin/env bash
# io_uring driver cost: blkbench through the whole stack onto the uring
# driver against fio's own io_uring engine, on the same file, in one run.
#
#   1. 4k random reads, iodepth 32, O_DIRECT, on a 1 GiB file of random
#      bytes on /var/tmp: blkbench --filename=uring:path=F,direct=1 vs
#      fio --ioengine=io_uring --direct=1. Target: blkbench >= 0.9x fio.
#   2. 4k sequential writes, iodepth 32, O_DIRECT: blkbench (the block
#      layer merges them under the plug) vs fio (one 4k write per I/O),
#      and blkbench with merging off (nomerges=2) for contrast. The gain
#      over fio is reported.
#
# Writes bench/results/uring.csv (benchmark,config,value,unit) and, with
# gnuplot, bench/results/uring.png. RUNTIME (seconds, default 5) per run;
# each figure is the median of REPEAT (default 3) rounds, the configs
# interleaved so that noise from the rest of the machine hits them alike.
# The file lives in a fresh directory under /var/tmp (BENCH_DIR to choose
# another) and is removed at the end.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
RUNTIME=${RUNTIME:-5}
REPEAT=${REPEAT:-3}
bb=$BUILD/tools/blkbench
py=/usr/bin/python3
out=$top/bench/results
csv=$out/uring.csv
tmp=$(mktemp -d)
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/blkstack-uring-bench.XXXXXX")
trap 'rm -rf "$tmp" "$dir"' EXIT
file=$dir/disk.img

[ -x "$bb" ] || { echo "uring.sh: $bb is not built (make first)" >&2; exit 1; }
[ -x "$py" ] || { echo "uring.sh: needs $py" >&2; exit 1; }
command -v fio >/dev/null || { echo "uring.sh: needs fio (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$out"

json() {
	"$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
ratio() { "$py" -c "print(f'{$1 / $2:.2f}')"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# blkbench NAME ARGS...: one run on the file, JSON kept in $tmp/NAME.json
blkbench() {
	local name=$1
	shift
	echo "  blkbench $*" >&2
	"$bb" --eta=never --output-format=json --runtime="$RUNTIME" --time_based \
		--bs=4k --iodepth=32 "$@" >"$tmp/$name.json"
}

# fio NAME ARGS...: the same job with fio's io_uring engine
fio_run() {
	local name=$1
	shift
	echo "  fio --ioengine=io_uring --direct=1 $*" >&2
	fio --name="$name" --filename="$file" --ioengine=io_uring --direct=1 \
		--bs=4k --iodepth=32 --size=1G --runtime="$RUNTIME" --time_based \
		--output-format=json "$@" >"$tmp/$name.json"
}

bb_iops() { json "$tmp/$1.json" 'round(sum(j["read"]["iops"] + j["write"]["iops"] for j in d["jobs"]))'; }
fio_iops() { json "$tmp/$1.json" 'round(d["jobs"][0]["read"]["iops"] + d["jobs"][0]["write"]["iops"])'; }

echo "Filling $file with 1 GiB of random bytes" >&2
head -c 1G /dev/urandom >"$file"
sync "$file"
dev="uring:path=$file,direct=1"

rr_bb=() rr_fio=() sw_bb=() sw_fio=() sw_nom=() sw_kb=()
for round in $(seq "$REPEAT"); do
	echo "Round $round of $REPEAT, $RUNTIME s per run" >&2
	blkbench rr_bb --name=rr --rw=randread --filename="$dev"
	rr_bb+=("$(bb_iops rr_bb)")
	fio_run rr_fio --rw=randread
	rr_fio+=("$(fio_iops rr_fio)")
	blkbench sw_bb --name=sw --rw=write --filename="$dev"
	sw_bb+=("$(bb_iops sw_bb)")
	sw_kb+=("$(json "$tmp/sw_bb.json" 'round(d["disk"]["mean_request_kb"], 1)')")
	fio_run sw_fio --rw=write
	sw_fio+=("$(fio_iops sw_fio)")
	blkbench sw_nom --name=swnm --rw=write --filename="$dev" \
		--queue=nomerges=2
	sw_nom+=("$(bb_iops sw_nom)")
done
echo "  rounds: randread blkbench ${rr_bb[*]}; fio ${rr_fio[*]}; seqwrite blkbench ${sw_bb[*]} (${sw_kb[*]} KiB/request); fio ${sw_fio[*]}; blkbench nomerges=2 ${sw_nom[*]}" >&2

rr_b=$(median "${rr_bb[@]}")
rr_f=$(median "${rr_fio[@]}")
sw_b=$(median "${sw_bb[@]}")
sw_f=$(median "${sw_fio[@]}")
sw_n=$(median "${sw_nom[@]}")
kb=$(median "${sw_kb[@]}")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/,/ /g')
fs=$(df -T "$dir" | awk 'NR == 2 { print $2 }')
{
	echo "benchmark,config,value,unit"
	echo "meta,date,$(date -u +%Y-%m-%dT%H:%M:%SZ),"
	echo "meta,machine,$cpu ($(nproc) CPUs),"
	echo "meta,kernel,$(uname -r),"
	echo "meta,file,1 GiB of random bytes on $fs (/var/tmp) O_DIRECT,"
	echo "meta,runs,median of $REPEAT x $RUNTIME s,"
	echo "randread,blkbench uring direct=1,$rr_b,IOPS"
	echo "randread,fio io_uring direct=1,$rr_f,IOPS"
	echo "randread,blkbench / fio,$(ratio "$rr_b" "$rr_f"),x"
	echo "seqwrite,blkbench uring direct=1 (merging),$sw_b,IOPS"
	echo "seqwrite,fio io_uring direct=1,$sw_f,IOPS"
	echo "seqwrite,blkbench nomerges=2,$sw_n,IOPS"
	echo "seqwrite,blkbench mean request,$kb,KiB"
	echo "seqwrite,blkbench / fio,$(ratio "$sw_b" "$sw_f"),x"
	echo "seqwrite,blkbench merging / nomerges=2,$(ratio "$sw_b" "$sw_n"),x"
} >"$csv"

echo
echo "io_uring driver, 4k qd32 O_DIRECT on a 1 GiB file ($fs, $(date -u +%F), $(nproc) CPUs, median of $REPEAT):"
printf '  %-40s %10s IOPS\n' "randread blkbench uring" "$rr_b" "randread fio io_uring" "$rr_f"
echo "  randread blkbench / fio = $(ratio "$rr_b" "$rr_f")x (target >= 0.9x)"
printf '  %-40s %10s IOPS\n' "seqwrite blkbench uring (merging)" "$sw_b" \
	"seqwrite fio io_uring" "$sw_f" "seqwrite blkbench nomerges=2" "$sw_n"
echo "  seqwrite blkbench / fio = $(ratio "$sw_b" "$sw_f")x (mean request $kb KiB); merging / nomerges=2 = $(ratio "$sw_b" "$sw_n")x"
echo "wrote $csv"

if command -v gnuplot >/dev/null; then
	grep -E '^(randread|seqwrite),.*,IOPS$' "$csv" |
		awk -F, '{ printf "\"%s %s\" %s\n", $1, $2, $3 / 1e3 }' >"$tmp/plot.dat"
	gnuplot <<EOF
set terminal png size 900,520 noenhanced
set output "$out/uring.png"
set title "blkstack uring driver vs fio io_uring: 4k qd32 O_DIRECT, kIOPS (higher is better)"
set style data histograms
set style fill solid 0.7
set boxwidth 0.8
set yrange [0:*]
set xtics rotate by 20 right
set bmargin 9
set lmargin 14
set ylabel "thousand IOPS"
unset key
plot "$tmp/plot.dat" using 2:xtic(1)
EOF
	echo "wrote $out/uring.png"
fi
