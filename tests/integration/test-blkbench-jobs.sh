#!/usr/bin/env bash
# blkbench with several jobs at once on one in-process null device: --name
# sections and fio job files, per-job prioclass/prio/weight in "job
# options", rate_iops (linear and poisson) measured against the asked
# rate, thinktime slowing a job down, per-job percentiles in the JSON,
# reporting groups, verify per job, ramp_time, debug_dump, and file:line messages for bad job
# files. About 20 s.
set -u
. "$(dirname "$0")/blkbench-lib.sh"
HOLDS_PY='
def iops(n, dd): return J[n][dd]["iops"]
P = ["1.000000", "50.000000", "99.000000", "99.900000"]
def pcts(n, dd):
    p = J[n][dd]["lat_ns"]["percentile"]
    return all(k in p for k in P) and p["50.000000"] <= p["99.000000"]
'

dev=null:size=256m,irqmode=0
# 50 us per I/O: the unpaced job sleeps too, so the paced ones get a CPU
slow=null:size=256m,irqmode=2,completion_nsec=50000

# 1. three jobs from --name sections: each its own entry, options, rates.
# The caps are firm (rate_iops: linear pacing never runs ahead; thinktime:
# 2 I/Os per 1 ms at most); how far below them a loaded 2-CPU machine's
# sleeps land is not, so the floors are loose.
run cli --filename=$slow --runtime=2 --time_based --output-format=json \
	--name=hi --rw=randread --iodepth=4 --prioclass=1 --prio=2 --weight=400 \
	--rate_iops=500 \
	--name=lo --rw=randwrite --iodepth=2 --prioclass=3 --thinktime=1000 \
	--thinktime_blocks=2 \
	--name=free --rw=randread --iodepth=8 --bs=8k
if [ $rc -eq 0 ] && holds 'len(d["jobs"]) == 3' 'set(J) == {"hi", "lo", "free"}' \
	'o("hi")["prioclass"] == "1" and o("hi")["prio"] == "2"' \
	'o("hi")["weight"] == "400" and o("hi")["rate_iops"] == "500"' \
	'o("lo")["prioclass"] == "3" and o("lo")["thinktime"] == "1000"' \
	'o("free")["bs"] == "8192" and "prioclass" not in o("free")' \
	'0.6 * 500 <= iops("hi", "read") <= 1.05 * 500' \
	'J["hi"]["write"]["total_ios"] == 0 and J["lo"]["read"]["total_ios"] == 0' \
	'J["lo"]["write"]["total_ios"] > 0 and iops("lo", "write") <= 2000' \
	'J["free"]["read"]["total_ios"] > 0 and "rate_iops" not in o("free")' \
	'pcts("hi", "read") and pcts("lo", "write") and pcts("free", "read")' \
	'J["hi"]["read"]["clat_ns"]["mean"] > 0' \
	'all(j["groupid"] == 0 for j in d["jobs"])' \
	'd["disk"]["read_ios"] + d["disk"]["read_merges"] == J["hi"]["read"]["total_ios"] + J["free"]["read"]["total_ios"]'; then
	ok "three --name jobs: rate_iops=500 gave $(grep -o '"iops" : [0-9.]*' "$tmp/cli.out" | head -1 | cut -d' ' -f3), thinktime slows, own options"
else
	fail "three --name jobs (exit $rc)"
fi

# 2. the same kind of run from a job file, globals inherited; poisson rate
cat >"$tmp/two.fio" <<EOF
; two readers, one paced
[global]
filename=$slow
rw=randread
runtime=2
time_based
iodepth=4

[paced]
rate_iops=400,  # reads only: writes uncapped
rate_process=poisson
prio=5

[greedy]
bs=16k
EOF
run file "$tmp/two.fio" --output-format=json
if [ $rc -eq 0 ] && holds 'len(d["jobs"]) == 2' \
	'0.5 * 400 <= iops("paced", "read") <= 1.25 * 400' \
	'o("paced")["prioclass"] == "2" and o("paced")["prio"] == "5"' \
	'o("paced")["rate_process"] == "poisson"' \
	'o("greedy")["bs"] == "16384" and o("greedy")["iodepth"] == "4"' \
	'J["greedy"]["read"]["io_bytes"] % 16384 == 0' \
	'iops("greedy", "read") > iops("paced", "read")'; then
	ok "job file: [global] inherited, poisson rate_iops=400"
else
	fail "job file (exit $rc)"
fi

# 3. reporting groups: group_reporting sums each group, new_group splits
run groups --filename=$dev --runtime=1 --time_based --group_reporting \
	--name=a --numjobs=2 --name=b --new_group --rw=randwrite
if [ $rc -eq 0 ] && grep -q '^a: (groupid=0, jobs=2)' "$tmp/groups.out" &&
   grep -q '^b: (groupid=1, jobs=1)' "$tmp/groups.out" &&
   grep -q '^Run status group 0 (all jobs):' "$tmp/groups.out" &&
   grep -q '^Run status group 1 (all jobs):' "$tmp/groups.out" &&
   [ "$(grep -c '^[ab]: (g=[01]): rw=' "$tmp/groups.out")" -eq 2 ] &&
   grep -q '^Starting 3 threads' "$tmp/groups.out"; then
	ok "group_reporting with new_group: two groups, three threads"
else
	fail "reporting groups (exit $rc)"
fi

# a job with group_reporting is summed, one without is not (fio's rule)
run mixed --filename=$dev --runtime=1 --time_based --output-format=json \
	--name=reader --name=writers --rw=randwrite --numjobs=3 --group_reporting
if [ $rc -eq 0 ] && holds 'len(d["jobs"]) == 2' \
	'J["writers"]["write"]["total_ios"] > 0 and J["reader"]["read"]["total_ios"] > 0' \
	'J["writers"]["job options"]["numjobs"] == "3"'; then
	ok "group_reporting on one job of two: two reports"
else
	fail "group_reporting on one job (exit $rc)"
fi

# kyber with its target set through --queue, a reader and a flood of writers
run kyber --filename=$slow --ioscheduler=kyber \
	--queue=iosched/read_lat_nsec=500000,iosched/write_lat_nsec=50000000 \
	--runtime=1 --time_based --output-format=json --name=reader --iodepth=1 \
	--prioclass=1 --name=writers --rw=randwrite --numjobs=2 --group_reporting
if [ $rc -eq 0 ] && holds 'len(d["jobs"]) == 2' \
	'J["reader"]["read"]["total_ios"] > 0 and pcts("reader", "read")' \
	'J["writers"]["write"]["total_ios"] > 0' 'd["disk"]["in_flight"] == 0'; then
	ok "kyber: reader and writers, targets through --queue"
else
	fail "kyber run (exit $rc)"
fi

# 4. verify per job on a memory-backed device, each job its own region
run verify --filename=null:size=64m,memory_backed=1 --size=8m --bs=4k \
	--verify=crc32c --name=seq --rw=write --name=rand --rw=randwrite \
	--offset=16m --name=mix --rw=randrw --offset=32m --thinktime=50 \
	--thinktime_blocks=16
if [ $rc -eq 0 ] && [ "$(grep -c 'verify       : [1-9][0-9]* blocks read back, 0 bad' \
	"$tmp/verify.out")" -eq 3 ]; then
	ok "verify=crc32c in three jobs at once (one with thinktime)"
else
	fail "verify per job (exit $rc)"
fi

# 5. ramp_time: I/O of the first 0.5 s runs but is not counted (the disk
# saw it), runtime is the measured part; debug_dump writes the queue's dump
run ramp --filename=$slow --rw=randread --iodepth=4 --ramp_time=500ms \
	--runtime=1 --time_based --output-format=json --debug_dump="$tmp/ramp.dump"
if [ $rc -eq 0 ] && holds '900 <= j["job_runtime"] <= 1400' \
	'd["disk"]["read_ios"] > 1.2 * j["read"]["total_ios"] > 0' &&
   grep -q '^queue ' "$tmp/ramp.dump" && grep -q 'hctx0' "$tmp/ramp.dump"; then
	ok "ramp_time=500ms: $(grep -o '"total_ios" : [0-9]*' "$tmp/ramp.out" | head -1 | cut -d' ' -f3) counted, the disk saw more; debug_dump written"
else
	fail "ramp_time / debug_dump (exit $rc)"
fi

# 6. bad job files and sections: exit 1, one line, naming file:line
bad() {
	local want=$1
	shift
	run bad "$@"
	if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] &&
	   grep -qF -- "$want" "$tmp/bad.err"; then
		ok "bad: $(cat "$tmp/bad.err")"
	else
		fail "bad input $* (exit $rc, wanted '$want')"
	fi
}
printf '[global]\nbs=4k\n[a]\nrw=foo\n' >"$tmp/rw.fio"
bad "blkbench: $tmp/rw.fio:4: rw=foo: valid values are read, write, randread" "$tmp/rw.fio"
printf 'bs=4k\n[a]\n' >"$tmp/early.fio"
bad "blkbench: $tmp/early.fio:1: 'bs=4k' comes before any section" "$tmp/early.fio"
printf '[a]\n[b\n' >"$tmp/hdr.fio"
bad "blkbench: $tmp/hdr.fio:2: '[b': a section header is [global] or [JOBNAME]" "$tmp/hdr.fio"
printf '[a]\nfilename=null:size=1g\n[b]\nfilename=null:size=2g\n' >"$tmp/two-dev.fio"
bad "blkbench: job 'b': --filename=null:size=2g: differs from job 'a' (null:size=1g): all jobs run on one device" "$tmp/two-dev.fio"
bad "blkbench: $tmp/none.fio: cannot open the job file" "$tmp/none.fio"
bad "blkbench: job 'x': --rate_iops=fast: expected IOPS per thread" --name=x --rate_iops=fast
bad "blkbench: --prioclass=4: must be a whole number from 0 to 3" --name=x --prioclass=4
bad "blkbench: --weight=1001: must be a whole number from 0 to 1000" --weight=1001
bad "blkbench: --thinktime=soon: expected a time like 100 (microseconds)" --thinktime=soon

bb_finish
