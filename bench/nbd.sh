#!/usr/bin/env bash
# NBD export vs peers (issue 3): fio --ioengine=nbd (libnbd, one
# connection per job) against
#
#   blkstackd-null   blkstackd, null device memory_backed=1 (1 GiB),
#                    irqmode=$NULL_IRQMODE (default 0: see below)
#   blkstackd-uring  blkstackd, uring device on a tmpfs file (page cache)
#   nbdkit-memory    nbdkit memory 1G
#   qemu-nbd         qemu-nbd -f raw --aio=io_uring --shared=8 on a tmpfs file
#   qsd              qemu-storage-daemon (QSD=0 to skip), file (aio=io_uring) + raw,
#                    nbd export on a tmpfs file
#
# all on unix sockets, in one run. Every server holds the same 1 GiB of
# random bytes (made once on /dev/shm; memory servers filled with nbdcopy)
# so that no reply is a hole. Workloads:
#
#   randread-j1 / randread-j2    4k randread, iodepth 32, numjobs 1 / 2
#   randwrite-j1 / randwrite-j2  4k randwrite, iodepth 32, numjobs 1 / 2
#   read-1m                      1 MiB sequential read, iodepth 8
#
# and, over TCP loopback (TCP=0 to skip), randread-j1 on blkstackd-null
# and nbdkit-memory. Target: blkstackd >= 1.3x the best peer on 4k IOPS,
# >= 1.0x on 1 MiB bandwidth.
#
# Writes bench/results/nbd.csv (workload,server,rep,iops,bw_bytes,lat_p99_us,
# client_cpu),
# bench/results/nbd-summary.csv (medians and the ratio to the best peer of
# the same workload and transport) and, with gnuplot, bench/results/nbd.png.
# A memory-backed null device has done its work (the copy) by the time
# queue_rq returns, as the kernel's RAM disk (brd) has when it ends its
# bio inline, so it completes inline (irqmode=0). irqmode=1 would add a
# hop to a completion thread per batch, a user-space cost the kernel's
# softirq completion (same CPU, no task switch) does not have;
# NULL_IRQMODE=1 measures that instead.
#
# RUNTIME (s, default 5) per run, REPEAT (default 3) rounds; in each round
# every workload runs on every server before the next workload, the server
# order rotated from round to round. PROFILE=1: afterwards, perf record -g
# of blkstackd for 5 s under randread-j1, top symbols printed. STAT=1:
# every run is also counted with perf stat on the server process, written
# to bench/results/nbd-stat.csv per I/O: CPU time, context switches and
# system calls (less noisy than IOPS on a loaded machine).
#
# PIN=1: the client's ceiling. fio runs on CPU 0 and every server on CPU 1,
# so no server's thread takes CPU time from fio or wakes onto its CPU; with
# one job fio then saturates its CPU (client_cpu near 100%) and the IOPS are
# what this client can drive, less whatever the server makes it wait.
# Writes nbd-pinned.csv and nbd-pinned-summary.csv instead (no plot).
# Every row has fio's CPU use (client_cpu: usr + sys in %, as fio's
# group report sums it over the jobs).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
RUNTIME=${RUNTIME:-5}
REPEAT=${REPEAT:-3}
QSD=${QSD:-$(command -v qemu-storage-daemon >/dev/null && echo 1 || echo 0)}
TCP=${TCP:-1}
PROFILE=${PROFILE:-0}
STAT=${STAT:-0}
NULL_IRQMODE=${NULL_IRQMODE:-0}
PIN=${PIN:-0}
case $PIN in 0|1) ;; *) echo "nbd.sh: PIN=$PIN: must be 0 or 1" >&2; exit 2 ;; esac
case $NULL_IRQMODE in 0|1|2) ;; *) echo "nbd.sh: NULL_IRQMODE=$NULL_IRQMODE: must be 0, 1 or 2" >&2; exit 2 ;; esac
daemon=$BUILD/daemon/blkstackd
py=/usr/bin/python3
out=$top/bench/results
csv=$out/nbd.csv
sum=$out/nbd-summary.csv
# on_server / on_client: run a command where PIN=1 puts servers / fio
on_server=()
on_client=()
if [ "$PIN" = 1 ]; then
	[ "$(nproc)" -ge 2 ] || { echo "nbd.sh: PIN=1 needs 2 CPUs" >&2; exit 1; }
	command -v taskset >/dev/null || { echo "nbd.sh: PIN=1 needs taskset" >&2; exit 1; }
	on_server=(taskset -c 1)
	on_client=(taskset -c 0)
	csv=$out/nbd-pinned.csv
	sum=$out/nbd-pinned-summary.csv
fi
tmp=$(mktemp -d)
shm=$(mktemp -d "${BENCH_DIR:-/dev/shm}/blkstack-nbd-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp" "$shm"
}
trap cleanup EXIT

[ -x "$daemon" ] || { echo "nbd.sh: $daemon is not built (make first)" >&2; exit 1; }
for t in fio nbdkit qemu-nbd nbdcopy nbdinfo "$py"; do
	command -v "$t" >/dev/null || { echo "nbd.sh: needs $t (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$QSD" = 1 ] && ! command -v qemu-storage-daemon >/dev/null && { echo "nbd.sh: QSD=1 needs qemu-storage-daemon" >&2; exit 1; }
fio --enghelp=nbd >/dev/null 2>&1 || { echo "nbd.sh: this fio has no nbd engine" >&2; exit 1; }
mkdir -p "$out"

free_tcp_port() {
	"$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_for TEST ARG PID WHAT: until [ TEST ARG ] holds, or die if PID exits
wait_for() {
	local i
	for i in $(seq 300); do
		[ "$1" "$2" ] && return 0
		kill -0 "$3" 2>/dev/null || { echo "nbd.sh: $4 exited" >&2; exit 1; }
		sleep 0.1
	done
	echo "nbd.sh: $4 not ready after 30 s" >&2
	exit 1
}
wait_tcp() {
	local i
	for i in $(seq 300); do
		nbdinfo --size "nbd://127.0.0.1:$1/$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "nbd.sh: nothing listens on 127.0.0.1:$1" >&2
	exit 1
}

img=$shm/random.img
echo "Making $img: 1 GiB of random bytes" >&2
head -c 1G /dev/urandom >"$img"
cp "$img" "$shm/uring.img"
cp "$img" "$shm/qemu.img"
[ "$QSD" = 1 ] && cp "$img" "$shm/qsd.img"

# blkstackd DIR LISTEN CONFIG: start one daemon (tests/integration/lib.sh flags)
blkstackd_pid=
start_blkstackd() {
	local d=$1
	mkdir -p "$d/state"
	printf '%s\n' "$3" >"$d/blkstackd.conf"
	"${on_server[@]}" "$daemon" --config "$d/blkstackd.conf" --state-dir "$d/state" \
		--socket "$d/ctl.sock" --nbd-listen "$2" --log-level warn \
		2>>"$d/blkstackd.log" &
	blkstackd_pid=$!
	pids+=("$blkstackd_pid")
	wait_for -S "$d/ctl.sock" "$blkstackd_pid" "blkstackd ($d)"
}

echo "Starting servers (t=${SECONDS}s)" >&2
start_blkstackd "$tmp/bsd" "unix:$tmp/bsd/nbd.sock" "dev add null nullb0 size=1G,memory_backed=1,irqmode=$NULL_IRQMODE
dev add uring disk0 path=$shm/uring.img,size=1G
export nbd nullb0
export nbd disk0"
bsd_pid=$blkstackd_pid
wait_for -S "$tmp/bsd/nbd.sock" "$bsd_pid" blkstackd

"${on_server[@]}" nbdkit -f --exit-with-parent -U "$tmp/nbdkit.sock" memory 1G &
pids+=($!)
nbdkit_pid=$!
wait_for -S "$tmp/nbdkit.sock" "$!" nbdkit

"${on_server[@]}" qemu-nbd -t -k "$tmp/qemu.sock" -f raw --aio=io_uring --shared=8 -x disk "$shm/qemu.img" &
pids+=($!)
qemu_pid=$!
wait_for -S "$tmp/qemu.sock" "$!" qemu-nbd

# the process serving each server name, for STAT=1
declare -A spid=([blkstackd-null]=$bsd_pid [blkstackd-uring]=$bsd_pid
		 [nbdkit-memory]=$nbdkit_pid [qemu-nbd]=$qemu_pid)

declare -A uri
uri[blkstackd-null]="nbd+unix:///nullb0?socket=$tmp/bsd/nbd.sock"
uri[blkstackd-uring]="nbd+unix:///disk0?socket=$tmp/bsd/nbd.sock"
uri[nbdkit-memory]="nbd+unix:///?socket=$tmp/nbdkit.sock"
uri[qemu-nbd]="nbd+unix:///disk?socket=$tmp/qemu.sock"
servers=(blkstackd-null blkstackd-uring nbdkit-memory qemu-nbd)
peers=(nbdkit-memory qemu-nbd)

if [ "$QSD" = 1 ]; then
	"${on_server[@]}" qemu-storage-daemon \
		--blockdev "driver=file,node-name=f0,filename=$shm/qsd.img,aio=io_uring" \
		--blockdev driver=raw,node-name=d0,file=f0 \
		--nbd-server "addr.type=unix,addr.path=$tmp/qsd.sock,max-connections=8" \
		--export type=nbd,id=e0,node-name=d0,name=disk,writable=on &
	pids+=($!)
	spid[qsd]=$!
	wait_for -S "$tmp/qsd.sock" "$!" qemu-storage-daemon
	uri[qsd]="nbd+unix:///disk?socket=$tmp/qsd.sock"
	servers+=(qsd)
	peers+=(qsd)
fi

fill() {
	echo "  nbdcopy $img -> $1 (t=${SECONDS}s)" >&2
	nbdcopy "$img" "$1"
}
echo "Filling the memory servers with the image's bytes" >&2
fill "${uri[blkstackd-null]}"
fill "${uri[nbdkit-memory]}"

tcp_servers=()
if [ "$TCP" = 1 ]; then
	p1=$(free_tcp_port)
	start_blkstackd "$tmp/bsd-tcp" "127.0.0.1:$p1" "dev add null nullb0 size=1G,memory_backed=1,irqmode=$NULL_IRQMODE
export nbd nullb0"
	wait_tcp "$p1" nullb0
	p2=$(free_tcp_port)
	"${on_server[@]}" nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$p2" memory 1G &
	pids+=($!)
	wait_tcp "$p2" ""
	uri[blkstackd-null-tcp]="nbd://127.0.0.1:$p1/nullb0"
	uri[nbdkit-memory-tcp]="nbd://127.0.0.1:$p2/"
	fill "${uri[blkstackd-null-tcp]}"
	fill "${uri[nbdkit-memory-tcp]}"
	tcp_servers=(blkstackd-null-tcp nbdkit-memory-tcp)
fi

# workload -> fio arguments
declare -A wargs
wargs[randread-j1]="--rw=randread --bs=4k --iodepth=32 --numjobs=1"
wargs[randread-j2]="--rw=randread --bs=4k --iodepth=32 --numjobs=2"
wargs[randwrite-j1]="--rw=randwrite --bs=4k --iodepth=32 --numjobs=1"
wargs[randwrite-j2]="--rw=randwrite --bs=4k --iodepth=32 --numjobs=2"
wargs[read-1m]="--rw=read --bs=1M --iodepth=8 --numjobs=1"
workloads=(randread-j1 randread-j2 randwrite-j1 randwrite-j2 read-1m)

# fio_run WORKLOAD SERVER JSON [RUNTIME]
fio_run() {
	# shellcheck disable=SC2086
	"${on_client[@]}" fio --name="$1" --ioengine=nbd --uri="${uri[$2]}" ${wargs[$1]} \
		--group_reporting --time_based --runtime="${4:-$RUNTIME}" \
		--output-format=json --output="$3" >"$3.err" 2>&1 ||
		{ echo "nbd.sh: fio $1 on $2 failed:" >&2; cat "$3.err" >&2; exit 1; }
}

# fio_run_stat WORKLOAD SERVER JSON REP: fio_run, with STAT=1 counted by
# perf stat on the server's process; a line in $stat_csv
fio_run_stat() {
	local p=${spid[$2]:-} sp
	if [ "$STAT" != 1 ] || [ -z "$p" ]; then
		fio_run "$1" "$2" "$3"
		return
	fi
	perf stat -x, -o "$tmp/stat" -p "$p" \
		-e task-clock,context-switches,raw_syscalls:sys_enter &
	sp=$!
	sleep 0.2
	fio_run "$1" "$2" "$3"
	kill -INT "$sp"
	wait "$sp" || true
	"$py" - "$3" "$tmp/stat" "$1,$2,$4" >>"$stat_csv" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
ios = j["read"]["total_ios"] + j["write"]["total_ios"]
v = {}
for line in open(sys.argv[2]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        v[f[2]] = float(f[0])
print(f'{sys.argv[3]},{ios},{v.get("task-clock", 0) * 1000 / ios:.2f},'
      f'{v.get("context-switches", 0) / ios:.3f},'
      f'{v.get("raw_syscalls:sys_enter", 0) / ios:.3f}')
EOF
}

# iops bw_bytes lat_p99_us of the direction the workload does, and
# fio's CPU use (usr + sys, %)
fio_figures() {
	"$py" - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
j = d["jobs"][0]
s = j["write"] if j["write"]["io_bytes"] > j["read"]["io_bytes"] else j["read"]
p99 = s["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
print(f'{s["iops"]:.0f},{s["bw_bytes"]},{p99:.0f},{j["usr_cpu"] + j["sys_cpu"]:.1f}')
EOF
}

echo "workload,server,rep,iops,bw_bytes,lat_p99_us,client_cpu" >"$csv"
stat_csv=$out/nbd-stat.csv
if [ "$STAT" = 1 ]; then
	command -v perf >/dev/null || { echo "nbd.sh: STAT=1 needs perf" >&2; exit 1; }
	echo "workload,server,rep,ios,server_cpu_us_per_io,server_cs_per_io,server_syscalls_per_io" >"$stat_csv"
fi
for rep in $(seq "$REPEAT"); do
	echo "Round $rep of $REPEAT, $RUNTIME s per run (t=${SECONDS}s)" >&2
	n=${#servers[@]}
	for w in "${workloads[@]}"; do
		for i in $(seq 0 $((n - 1))); do
			s=${servers[$(( (i + rep - 1) % n ))]}
			fio_run_stat "$w" "$s" "$tmp/r.json" "$rep"
			f=$(fio_figures "$tmp/r.json")
			echo "  $w $s: $f" >&2
			echo "$w,$s,$rep,$f" >>"$csv"
		done
	done
	for i in $(seq 0 $((${#tcp_servers[@]} - 1))); do
		s=${tcp_servers[$(( (i + rep - 1) % ${#tcp_servers[@]} ))]}
		fio_run randread-j1 "$s" "$tmp/r.json"
		f=$(fio_figures "$tmp/r.json")
		echo "  randread-j1 $s: $f" >&2
		echo "randread-j1,$s,$rep,$f" >>"$csv"
	done
done

# summary: medians per (workload, server); ratio = the server's median of
# the workload's figure (IOPS for 4k, bandwidth for 1 MiB) over the best
# peer's median on the same transport
"$py" - "$csv" "$sum" "${peers[*]}" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
peers = sys.argv[3].split()
med = {}
for k in dict.fromkeys((r["workload"], r["server"]) for r in rows):
    rs = [r for r in rows if (r["workload"], r["server"]) == k]
    med[k] = {f: statistics.median(float(r[f]) for r in rs) for f in ("iops", "bw_bytes", "lat_p99_us", "client_cpu")}
with open(sys.argv[2], "w") as o:
    o.write("workload,server,transport,iops,bw_bytes,lat_p99_us,client_cpu,metric,best_peer,ratio_vs_best_peer,target,met\n")
    for (w, s), m in med.items():
        tcp = s.endswith("-tcp")
        metric = "bw_bytes" if w == "read-1m" else "iops"
        cands = [(med[(w, p + ("-tcp" if tcp else ""))][metric], p + ("-tcp" if tcp else ""))
                 for p in peers if (w, p + ("-tcp" if tcp else "")) in med]
        best, bp = max(cands)
        ratio = m[metric] / best
        target = 1.0 if w == "read-1m" else 1.3
        isbsd = s.startswith("blkstackd")
        o.write(f'{w},{s},{"tcp" if tcp else "unix"},{m["iops"]:.0f},{m["bw_bytes"]:.0f},{m["lat_p99_us"]:.0f},{m["client_cpu"]:.1f},'
                f'{metric},{bp},{ratio:.2f},{target if isbsd else ""},{("yes" if ratio >= target else "no") if isbsd else ""}\n')
EOF
echo "wrote $csv and $sum"
[ "$STAT" = 1 ] && echo "wrote $stat_csv"
column -s, -t "$sum"

if [ "$PIN" = 0 ] && command -v gnuplot >/dev/null; then
	# one cluster per workload, one bar per server: the median normalised
	# to the best peer of the workload (1.0 = the best peer)
	"$py" - "$sum" "$tmp/plot.dat" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ws = []
for r in rows:
    w = r["workload"] + (" (tcp)" if r["transport"] == "tcp" else "")
    if w not in ws:
        ws.append(w)
ss = []
for r in rows:
    s = r["server"].removesuffix("-tcp")
    if s not in ss:
        ss.append(s)
with open(sys.argv[2], "w") as o:
    o.write("workload " + " ".join(ss) + "\n")
    for w in ws:
        vals = []
        for s in ss:
            v = [r["ratio_vs_best_peer"] for r in rows
                 if r["workload"] + (" (tcp)" if r["transport"] == "tcp" else "") == w
                 and r["server"].removesuffix("-tcp") == s]
            vals.append(v[0] if v else "-")
        o.write(f'"{w}" ' + " ".join(vals) + "\n")
EOF
	ncol=$(head -1 "$tmp/plot.dat" | wc -w)
	gnuplot <<EOF
set terminal png size 1000,540 noenhanced
set output "$out/nbd.png"
set title "NBD export, fio --ioengine=nbd: median / best peer (4k: IOPS, 1m: bandwidth; higher is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7
set boxwidth 0.9
set yrange [0:*]
set datafile missing "-"
set key top left
set xtics rotate by 15 right
set bmargin 6
set ylabel "x best peer"
set arrow from graph 0, first 1.3 to graph 1, first 1.3 nohead dt 2 lc rgb "red"
set arrow from graph 0, first 1.0 to graph 1, first 1.0 nohead dt 3 lc rgb "gray"
plot for [c=2:$ncol] "$tmp/plot.dat" using c:xtic(1) title columnheader(c)
EOF
	echo "wrote $out/nbd.png"
fi

if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
	echo "perf record -g of blkstackd during randread-j1 on blkstackd-null" >&2
	fio_run randread-j1 blkstackd-null "$tmp/p.json" 8 &
	fp=$!
	sleep 2
	perf record -q -g -p "$bsd_pid" -o "$tmp/perf.data" -- sleep 5 >/dev/null 2>&1 || true
	wait "$fp"
	echo "under perf: $(fio_figures "$tmp/p.json") (iops,bw_bytes,lat_p99_us)" >&2
	perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -15
fi
