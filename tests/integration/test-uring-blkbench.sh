#!/usr/bin/env bash
# blkbench on the io_uring driver (drivers/uring.c) over real files on
# /var/tmp: verified random I/O (buffered, O_DIRECT, two hw queues and two
# jobs), merged sequential writes that fio then reads back and checks with
# its own pattern verifier, --bypass, polled I/O on a poll queue, and the
# message for a bad parameter. About 15 s.
set -u
BB_TMP_IN=/var/tmp
. "$(dirname "$0")/blkbench-lib.sh"
command -v fio >/dev/null || { echo "SKIP: needs fio (scripts/install-deps.sh)"; exit 77; }

f=$tmp/disk.img

# 1. the issue's check: mixed random I/O, every block read back and checked
run randrw --rw=randrw --bs=4k --iodepth=32 --size=64M --verify=crc32c \
	--filename=uring:path=$f,size=64M --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' 'j["verify"]["blocks"] > 0' \
	'j["write"]["total_ios"] > 0' 'k["in_flight"] == 0' &&
   [ "$(stat -c %s "$f")" = $((64 << 20)) ]; then
	ok "randrw verify=crc32c on uring:path=F,size=64M (file made, 64 MiB)"
else
	fail "randrw verify (exit $rc)"
fi

# 2. O_DIRECT, two hw queues, two jobs on their own halves
run direct --rw=randwrite --bs=8k --iodepth=16 --size=32M --numjobs=2 \
	--offset_increment=32M --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--verify=crc32c --group_reporting --output-format=json \
	--filename=uring:path=$f,direct=1,queues=2
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 2 * 4096'; then
	ok "direct=1,queues=2: two jobs, 8k random writes verified"
else
	fail "direct=1,queues=2 (exit $rc)"
fi

# 3. sequential writes merge; fio checks the file with its own verifier
run seq --rw=write --bs=4k --iodepth=32 --size=16M --verify=pattern \
	--verify_pattern=0x5aa5f00f --filename=uring:path=$f,direct=1 \
	--output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'k["mean_request_kb"] > 16' 'k["write_merges"] > 0'; then
	ok "sequential 4k writes merged: $("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk"]["mean_request_kb"])' "$tmp/seq.out") KiB per request"
else
	fail "sequential writes (exit $rc)"
fi
name=fio
timeout -k 5 60 fio --name=check --filename="$f" --rw=write --bs=4k --size=16M \
	--verify=pattern --verify_pattern=0x5aa5f00f --verify_only=1 \
	--verify_state_save=0 \
	--output-format=json >"$tmp/fio.out" 2>"$tmp/fio.err"
rc=$?
if [ $rc -eq 0 ] && "$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))["jobs"][0]
sys.exit(0 if d["error"] == 0 and d["read"]["io_bytes"] == 16 << 20 else 1)' "$tmp/fio.out"; then
	ok "fio --verify_only reads the 16 MiB back with the pattern"
else
	fail "fio verify of the file blkbench wrote (exit $rc)"
fi
# and a pattern fio does not find is an error: the check can fail
timeout -k 5 60 fio --name=check --filename="$f" --rw=write --bs=4k --size=1M \
	--verify=pattern --verify_pattern=0x11111111 --verify_only=1 \
	--verify_state_save=0 \
	>"$tmp/fio2.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	ok "fio finds a wrong pattern (exit $rc)"
else
	fail "fio accepted a pattern that was never written"
fi

# 4. --bypass: pread/pwrite straight on the file, nothing in diskstats
run bypass --bypass --rw=randread --runtime=1 --time_based \
	--filename=uring:path=$f --output-format=json
if [ $rc -eq 0 ] && holds 'j["read"]["iops"] > 0' 'k["read_ios"] == 0'; then
	ok "--bypass"
else
	fail "--bypass (exit $rc)"
fi

# 5. polled I/O on a poll queue (an IOPOLL ring)
run hipri --hipri --rw=randrw --runtime=1 --time_based --iodepth=8 \
	--filename=uring:path=$f,direct=1,poll_queues=1 --output-format=json
if [ $rc -eq 0 ] && holds 'j["read"]["iops"] > 0' 'j["write"]["iops"] > 0' \
	'k["in_flight"] == 0'; then
	ok "--hipri on poll_queues=1"
else
	fail "--hipri on poll_queues=1 (exit $rc)"
fi

# 6. a bad parameter: one line naming it and the valid ones, nothing run
run bad --rw=read --size=1M --filename=uring:path=$f,colour=blue
if [ $rc -ne 0 ] && grep -q "unknown parameter 'colour'; valid: path, size" \
	"$tmp/bad.err"; then
	ok "bad parameter: $(head -n 1 "$tmp/bad.err")"
else
	fail "bad parameter should fail with a message (exit $rc)"
fi

bb_finish
