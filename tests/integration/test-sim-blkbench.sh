#!/usr/bin/env bash
# blkbench on sim devices with mq-deadline: verify on an ssd and an hdd
# model (data through the scheduler and the model's completion thread),
# a reader and writers at once with mq-deadline's tunables set through
# --queue=iosched/..., the rotational flag in the JSON's disk object, and
# bad sim parameters refused with the key and the valid values. ~10 s.
set -u
. "$(dirname "$0")/blkbench-lib.sh"

# 1. verify through mq-deadline on the ssd model
run vssd --filename=sim:model=ssd,size=256M,time_scale=100 \
	--ioscheduler=mq-deadline --rw=randwrite --bs=4k --size=16m \
	--iodepth=16 --verify=crc32c --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 4096' 'j["write"]["total_ios"] == 4096'; then
	ok "verify on sim ssd through mq-deadline"
else
	fail "verify on sim ssd (exit $rc)"
fi

# 2. the same on the hdd model, sequential 64k with merging
run vhdd --filename=sim:model=hdd,size=256M,time_scale=1000 \
	--ioscheduler=mq-deadline --rw=write --bs=16k --size=8m \
	--iodepth=8 --verify=crc32c --output-format=json
if [ $rc -eq 0 ] && holds 'j["verify"]["bad"] == 0' \
	'j["verify"]["blocks"] == 512' 'd["disk"]["write_ios"] > 0'; then
	ok "verify on sim hdd through mq-deadline"
else
	fail "verify on sim hdd (exit $rc)"
fi

# 3. a reader among writers, the scheduler's times scaled to the model
run mixed --filename=sim:model=hdd,size=1G,time_scale=100,memory_backed=0 \
	--ioscheduler=mq-deadline \
	--queue=iosched/read_expire=5,iosched/write_expire=50,iosched/fifo_batch=8 \
	--runtime=1 --time_based --output-format=json \
	--name=reader --rw=read --bs=64k --iodepth=1 \
	--name=writer --rw=randwrite --bs=4k --iodepth=16 --numjobs=2
if [ $rc -eq 0 ] && holds 'len(js) == 3' \
	'js[0]["read"]["total_ios"] > 0' \
	'js[1]["write"]["total_ios"] > 0 and js[2]["write"]["total_ios"] > 0'; then
	ok "a reader and two writers at once on sim hdd"
else
	fail "reader and writers (exit $rc)"
fi

# 4. bad parameters: the key and the valid values, exit non-zero
name=badrpm
if ! "$bb" --eta=never --filename=sim:model=hdd,rpm=5 --runtime=1 \
	>"$tmp/$name.out" 2>"$tmp/$name.err" &&
   grep -q 'rpm=5' "$tmp/$name.err" && grep -q '3600..20000' "$tmp/$name.err"; then
	ok "sim rpm=5 refused with the valid range"
else
	fail "sim rpm=5 not refused clearly"
fi
name=badkey
if ! "$bb" --eta=never --filename=sim:model=ssd,rpm=7200 --runtime=1 \
	>"$tmp/$name.out" 2>"$tmp/$name.err" &&
   grep -q 'model=hdd' "$tmp/$name.err"; then
	ok "an hdd parameter on model=ssd refused"
else
	fail "hdd parameter on ssd not refused clearly"
fi

bb_finish
