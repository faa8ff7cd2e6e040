#!/usr/bin/env bash
# NBD client driver cost: blkbench through the whole stack onto the nbd
# driver (drivers/nbd.c, libnbd) against fio's own nbd engine (libnbd, no
# block layer), both on one nbdkit memory server over a unix socket, in
# one run.
#
#   1. 4k random reads, iodepth 16, one job: blkbench with the device's
#      default scheduler (mq-deadline: one hw queue, as the kernel picks),
#      blkbench with --ioscheduler=none, fio --ioengine=nbd.
#   2. 4k random reads, iodepth 16, two jobs: blkbench on two connections
#      (conns=2, one hw queue each, multi-conn) vs fio with two jobs (one
#      connection each).
#   3. 4k sequential writes, iodepth 16: blkbench (the plug merges them
#      into large NBD writes) vs fio (one 4k NBD write per I/O).
#
# Writes bench/results/nbd-client.csv (benchmark,config,value,unit).
# RUNTIME (seconds, default 3) per run; each figure is the median of
# REPEAT (default 3) rounds, the configs interleaved.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
RUNTIME=${RUNTIME:-3}
REPEAT=${REPEAT:-3}
bb=$BUILD/tools/blkbench
py=/usr/bin/python3
out=$top/bench/results
csv=$out/nbd-client.csv
tmp=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT

[ -x "$bb" ] || { echo "nbd-client.sh: $bb is not built (make first)" >&2; exit 1; }
for t in nbdkit fio "$py"; do
	command -v "$t" >/dev/null || { echo "nbd-client.sh: needs $t (scripts/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$out"

sock=$tmp/nbd.sock
nbdkit -f --exit-with-parent -U "$sock" memory 2G &
srv=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
uri="nbd+unix:///?socket=$sock"

json() {
	"$py" -c 'import json, sys
t = open(sys.argv[1]).read()
d = json.loads(t[t.index("{"):])	# fio prints a line before the JSON
print(eval(sys.argv[2]))' "$1" "$2"
}
ratio() { "$py" -c "print(f'{$1 / $2:.2f}')"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
iops() { json "$tmp/$1.json" 'round(sum(j["read"]["iops"] + j["write"]["iops"] for j in d["jobs"]))'; }

# blkbench NAME PARAMS ARGS...: one run on nbd:PARAMS
blkbench() {
	local name=$1 params=$2
	shift 2
	echo "  blkbench --filename=nbd:$params $*" >&2
	"$bb" --eta=never --output-format=json --runtime="$RUNTIME" --time_based \
		--bs=4k --iodepth=16 --size=1G --filename="nbd:$params" "$@" \
		>"$tmp/$name.json"
}

fio_run() {
	local name=$1
	shift
	echo "  fio --ioengine=nbd $*" >&2
	fio --name="$name" --ioengine=nbd --uri="$uri" --bs=4k --iodepth=16 \
		--size=1G --runtime="$RUNTIME" --time_based --group_reporting \
		--output-format=json "$@" >"$tmp/$name.json" 2>/dev/null
}

one="uri=$uri,conns=1"
two="uri=$uri,conns=2"
rr=() rrn=() rrf=() mc=() mcf=() sw=() swf=() kb=()
for round in $(seq "$REPEAT"); do
	echo "Round $round of $REPEAT, $RUNTIME s per run" >&2
	blkbench rr "$one" --name=rr --rw=randread
	rr+=("$(iops rr)")
	blkbench rrn "$one" --name=rr --rw=randread --ioscheduler=none
	rrn+=("$(iops rrn)")
	fio_run rrf --rw=randread
	rrf+=("$(iops rrf)")
	blkbench mc "$two" --name=mc --rw=randread --numjobs=2 \
		--offset_increment=512M --size=512M
	mc+=("$(iops mc)")
	fio_run mcf --rw=randread --numjobs=2 --offset_increment=512M --size=512M
	mcf+=("$(iops mcf)")
	blkbench sw "$one" --name=sw --rw=write
	sw+=("$(iops sw)")
	kb+=("$(json "$tmp/sw.json" 'round(d["disk"]["mean_request_kb"], 1)')")
	fio_run swf --rw=write
	swf+=("$(iops swf)")
done
echo "  rounds: rr ${rr[*]}; rr none ${rrn[*]}; fio ${rrf[*]}; 2 conns ${mc[*]}; fio 2 jobs ${mcf[*]}; seqwrite ${sw[*]} (${kb[*]} KiB); fio ${swf[*]}" >&2

rr=$(median "${rr[@]}") rrn=$(median "${rrn[@]}") rrf=$(median "${rrf[@]}")
mc=$(median "${mc[@]}") mcf=$(median "${mcf[@]}")
sw=$(median "${sw[@]}") swf=$(median "${swf[@]}") kb=$(median "${kb[@]}")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/,/ /g')
{
	echo "benchmark,config,value,unit"
	echo "meta,date,$(date -u +%Y-%m-%dT%H:%M:%SZ),"
	echo "meta,machine,$cpu ($(nproc) CPUs),"
	echo "meta,kernel,$(uname -r),"
	echo "meta,server,nbdkit $(nbdkit --version | cut -d' ' -f2) memory over a unix socket,"
	echo "meta,runs,median of $REPEAT x $RUNTIME s,"
	echo "randread,blkbench nbd (mq-deadline),$rr,IOPS"
	echo "randread,blkbench nbd (none),$rrn,IOPS"
	echo "randread,fio nbd,$rrf,IOPS"
	echo "randread,blkbench (none) / fio,$(ratio "$rrn" "$rrf"),x"
	echo "randread 2 jobs,blkbench nbd conns=2,$mc,IOPS"
	echo "randread 2 jobs,fio nbd numjobs=2,$mcf,IOPS"
	echo "randread 2 jobs,blkbench / fio,$(ratio "$mc" "$mcf"),x"
	echo "seqwrite,blkbench nbd,$sw,IOPS"
	echo "seqwrite,blkbench mean request,$kb,KiB"
	echo "seqwrite,fio nbd,$swf,IOPS"
	echo "seqwrite,blkbench / fio,$(ratio "$sw" "$swf"),x"
} >"$csv"

echo
echo "NBD client, 4k on nbdkit memory ($(date -u +%F), $(nproc) CPUs, median of $REPEAT):"
printf '  %-36s %10s IOPS\n' "randread blkbench (mq-deadline)" "$rr" \
	"randread blkbench (none)" "$rrn" "randread fio nbd" "$rrf" \
	"2 jobs blkbench conns=2" "$mc" "2 jobs fio nbd" "$mcf" \
	"seqwrite blkbench ($kb KiB requests)" "$sw" "seqwrite fio nbd" "$swf"
echo "  blkbench / fio: randread $(ratio "$rrn" "$rrf")x, 2 jobs $(ratio "$mc" "$mcf")x, seqwrite $(ratio "$sw" "$swf")x"
echo "wrote $csv"
