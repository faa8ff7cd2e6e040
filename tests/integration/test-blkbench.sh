#!/usr/bin/env bash
# blkbench end to end on in-process null devices: the default job, JSON with
# fio's fields, verify passing through forced splits and merges on a
# memory-backed device and failing on one that keeps no data, --bypass,
# irqmode 1 and 2, several jobs pinned per CPU, the random map and
# --norandommap, --clocksource, and the messages for bad options. About 20 s.
set -u
. "$(dirname "$0")/blkbench-lib.sh"

# 1. the default job, shortened: fio-style summary and disk stats
run default --runtime=1 --time_based
if [ $rc -eq 0 ] && grep -q '^  read: IOPS=' "$tmp/default.out" &&
   grep -q 'clat percentiles' "$tmp/default.out" &&
   grep -q '^Disk stats' "$tmp/default.out" &&
   grep -q '^   READ: bw=' "$tmp/default.out"; then
	ok "default job (4k randread, iodepth 32 on null)"
else
	fail "default job (exit $rc)"
fi

# 2. JSON parses, has fio's names, IOPS and the percentiles
pcts='["1.000000","50.000000","99.000000","99.900000","99.990000"]'
run json --runtime=1 --time_based --output-format=json
if [ $rc -eq 0 ] && holds 'd["fio version"].startswith("blkbench")' \
	'j["read"]["iops"] > 0' 'j["read"]["total_ios"] > 0' \
	'j["write"]["total_ios"] == 0' "all(p in j['read']['clat_ns']['percentile'] for p in $pcts)" \
	"all(p in j['read']['lat_ns']['percentile'] for p in $pcts)" \
	'j["read"]["lat_ns"]["min"] <= j["read"]["lat_ns"]["mean"] <= j["read"]["lat_ns"]["max"]' \
	'k["read_ios"] + k["read_merges"] == j["read"]["total_ios"]' \
	'k["read_sectors"] * 512 == j["read"]["io_bytes"]' 'k["in_flight"] == 0' \
	'3.9 < k["mean_request_kb"] < 4.1'; then
	ok "JSON: iops > 0, percentiles, disk object"
else
	fail "JSON (exit $rc)"
fi

# 3. verify through merges: sequential 4k writes with an 8 KiB request cap,
# four jobs on their own 64 MiB regions
mem=null:size=1G,memory_backed=1
run vmerge --rw=write --bs=4k --size=64m --numjobs=4 --offset_increment=64m \
	--verify=crc32c --queue=max_sectors_kb=8 --filename=$mem \
	--group_reporting --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 4 * 16384' 'k["write_merges"] > 0' \
	'k["write_sectors"] == 4 * 64 * 2048'; then
	ok "verify=crc32c passes, writes merged (max_sectors_kb=8, 4 jobs)"
else
	fail "verify through merges (exit $rc)"
fi

# 4. verify through splits: 64k random writes cut into 8 KiB requests
run vsplit --rw=randwrite --bs=64k --size=64m --numjobs=4 \
	--offset_increment=64m --verify=crc32c --queue=max_sectors_kb=8 \
	--filename=$mem --group_reporting --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' 'j["verify"]["blocks"] > 0' \
	'k["write_ios"] >= 8 * j["write"]["total_ios"]'; then
	ok "verify=crc32c passes, bios split (64k over max_sectors_kb=8)"
else
	fail "verify through splits (exit $rc)"
fi

# 5. pattern verify, mixed random I/O on a completion thread, time based
run vpattern --rw=randrw --runtime=1 --time_based --verify=pattern \
	--verify_pattern=0x5aa5f00f --filename=$mem,irqmode=1
if [ $rc -eq 0 ] && grep -q 'verify       : [1-9][0-9]* blocks read back, 0 bad' \
	"$tmp/vpattern.out"; then
	ok "verify=pattern passes (randrw, irqmode=1)"
else
	fail "verify=pattern (exit $rc)"
fi

# 6. the check can fail: a device without memory keeps nothing
run vfail --rw=write --size=4m --verify=crc32c \
	--filename=null:size=1G,memory_backed=0
if [ $rc -ne 0 ] && grep -q 'verify: job 0: block at offset [0-9]* .*expected .*got' \
	"$tmp/vfail.err" && grep -q 'of 1024 blocks bad' "$tmp/vfail.err"; then
	ok "verify fails on memory_backed=0 (exit $rc)"
else
	fail "verify on memory_backed=0 should fail with offset, expected and got (exit $rc)"
fi

# 7. --bypass: I/O reaches the driver without the block layer
run bypass --bypass --runtime=1 --time_based --output-format=json
if [ $rc -eq 0 ] && holds 'j["read"]["iops"] > 0' 'k["read_ios"] == 0'; then
	ok "--bypass runs, and nothing is accounted in diskstats"
else
	fail "--bypass (exit $rc)"
fi

# 8. completions on another thread: softirq-like and timer
for m in 1 2; do
	run irq$m --runtime=1 --time_based --iodepth=16 \
		--filename=null:size=1G,irqmode=$m --output-format=json
	if [ $rc -eq 0 ] && holds 'j["read"]["iops"] > 0' 'k["in_flight"] == 0'; then
		ok "irqmode=$m completes"
	else
		fail "irqmode=$m (exit $rc)"
	fi
done

# 9. two jobs, one CPU each, two hardware queues, one report
run split --numjobs=2 --cpus_allowed=0 --cpus_allowed_policy=split \
	--runtime=1 --time_based --group_reporting --output-format=json \
	--filename=null:size=1G,submit_queues=2
if [ $rc -eq 0 ] && holds 'len(d["jobs"]) == 1' 'j["read"]["iops"] > 0'; then
	ok "numjobs=2 with cpus_allowed and group_reporting"
else
	fail "numjobs=2 (exit $rc)"
fi

# 10. fio's random map: each block once per pass; --norandommap repeats,
# reproducibly for one --randseed
run rmap --rw=randwrite --size=64m --verify=crc32c --filename=$mem \
	--output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 16384' 'j["write"]["total_ios"] == 16384'; then
	ok "random map: 16384 random writes cover all 16384 blocks"
else
	fail "random map (exit $rc)"
fi
run rpass --rw=randwrite --size=1m --runtime=1 --time_based --verify=crc32c \
	--filename=$mem --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 256' 'j["write"]["total_ios"] > 2 * 256'; then
	ok "random map: passes over a 1 MiB region, every block written"
else
	fail "random map over several passes (exit $rc)"
fi
norm=()
for seed in 1 1 2; do
	run norm --rw=randwrite --size=64m --verify=crc32c --filename=$mem \
		--norandommap --randseed=$seed --output-format=json
	norm+=("$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["verify"]["blocks"])' "$tmp/norm.out" 2>/dev/null)")
done
# 16384 draws with repeats leave about 1 - 1/e of the blocks: 10356
if [ $rc -eq 0 ] && [ "${norm[0]}" = "${norm[1]}" ] &&
   [ "${norm[0]}" != "${norm[2]}" ] && [ "${norm[0]}" -gt 9800 ] &&
   [ "${norm[0]}" -lt 11000 ]; then
	ok "--norandommap: ${norm[*]} distinct blocks for seeds 1 1 2"
else
	fail "--norandommap: '${norm[*]}' distinct blocks for seeds 1 1 2 (exit $rc)"
fi

# 11. the clock: named in the header line and the JSON, selectable
run clk --runtime=1 --time_based
if [ $rc -eq 0 ] && grep -Eq '^blkbench: \(g=0\): .*, clocksource=(tsc|clock_gettime)$' \
	"$tmp/clk.out"; then
	ok "header: $(grep -o 'clocksource=.*' "$tmp/clk.out")"
else
	fail "clocksource in the header line (exit $rc)"
fi
run clkj --runtime=1 --time_based --clocksource=clock_gettime --output-format=json
if [ $rc -eq 0 ] && holds 'd["clocksource"] == "clock_gettime"' 'j["read"]["iops"] > 0'; then
	ok "--clocksource=clock_gettime"
else
	fail "--clocksource=clock_gettime (exit $rc)"
fi
if grep -qw constant_tsc /proc/cpuinfo && grep -qw nonstop_tsc /proc/cpuinfo &&
   [ "$(uname -m)" = x86_64 ]; then
	run clkc --runtime=1 --time_based --clocksource=cpu --output-format=json
	if [ $rc -eq 0 ] && holds 'd["clocksource"] == "tsc"' 'j["read"]["iops"] > 0'; then
		ok "--clocksource=cpu reads the TSC"
	else
		fail "--clocksource=cpu (exit $rc)"
	fi
else
	echo "skip --clocksource=cpu: no constant_tsc and nonstop_tsc here"
fi

# 12. bad input: exit 1 and one line naming the option and the valid values
bad() {
	local want=$1
	shift
	run bad "$@"
	if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] &&
	   grep -qF -- "$want" "$tmp/bad.err"; then
		ok "bad input $*: $(cat "$tmp/bad.err")"
	else
		fail "bad input $* (exit $rc, wanted '$want')"
	fi
}
bad 'blkbench: --rw=foo: valid values are read, write, randread, randwrite, randrw, readwrite' --rw=foo
bad 'blkbench: --bs=4q: expected a size' --bs=4q
bad 'blkbench: --iodepth=0: must be a whole number from 1 to 4096' --iodepth=0
bad 'blkbench: unknown option --bogus' --bogus=1
bad 'blkbench: --output-format=xml: valid values are normal, json, json+' --output-format=xml
bad 'blkbench: --verify: needs a job that writes' --verify=crc32c
bad 'blkbench: --filename=null:bogus=1: ' --filename=null:bogus=1
bad 'blkbench: --filename=nosuchdriver:x=1: ' --filename=nosuchdriver:x=1
bad 'blkbench: --queue: nosuchattr=1: ' --queue=nosuchattr=1
bad 'does not fit nullb0' --size=2g
bad 'blkbench: --clocksource=hpet: valid values are cpu, clock_gettime' --clocksource=hpet

bb_finish
