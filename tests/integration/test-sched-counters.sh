#!/usr/bin/env bash
# Every scheduler's per-class counters (dispatched, merged, expired and
# starved where the scheduler has them, max wait) in `blkctl --json debug`
# and in the text dump: present for each class, zero on a fresh elevator,
# and moving under fio --ioengine=nbd loads made to provoke each of them
# (a slow device two requests deep, so requests wait in the scheduler;
# deadlines of 1 ms, so they expire; a trim storm deeper than kyber's
# discard tokens, so the domain starves).
set -u
. "$(dirname "$0")/lib.sh"
need fio "$PY"
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "SKIP: fio has no nbd engine"; exit 77; }

slow="memory_backed=1,irqmode=2,completion_nsec=2000000"
start_daemon -c "dev add null s0 size=64M,$slow,hw_queue_depth=2
dev add null k0 size=64M,$slow,hw_queue_depth=128
export nbd s0
export nbd k0" || exit 1
out=$BLKSTACKD_DIR/out
mkdir -p "$out"

# fio DEVICE JOB-OPTIONS...: a 2 s load through the NBD export
load() {
	local dev=$1
	shift
	timeout 60 fio --ioengine=nbd --uri="$(nbd_uri "$dev")" --bs=4k \
		--size=32M --time_based --runtime=2 "$@" >"$out/fio" 2>&1 ||
		{ fail "fio on $dev: $(tail -3 "$out/fio")"; return 1; }
}

# check BEFORE AFTER CLASSES EXPR...: every class has the fields its
# scheduler keeps, all zero before; each EXPR (Python, over b and a,
# the classes before and after) holds
check() {
	"$PY" - "$@" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["iosched"]["classes"]
a = json.load(open(sys.argv[2]))["iosched"]["classes"]
classes = sys.argv[3].split()
fields = {"dispatched", "merged", "max_wait_ns"} | set(sys.argv[4].split())
bad = []
if sorted(a) != sorted(classes) or sorted(b) != sorted(classes):
    bad.append("classes %s, want %s" % (sorted(a), sorted(classes)))
for c in classes:
    if set(a.get(c, {})) != fields:
        bad.append("%s has %s, want %s" % (c, sorted(a.get(c, {})), sorted(fields)))
    if any(b.get(c, {}).values()):
        bad.append("%s not zero on a fresh elevator: %s" % (c, b[c]))
for e in sys.argv[5:]:
    try:
        if not eval(e):
            bad.append("not true: " + e)
    except Exception as x:
        bad.append("%s: %r" % (e, x))
if bad:
    print("; ".join(bad))
    print("after:", a)
    sys.exit(1)
PY
}

# sched DEVICE SCHED ATTR=VALUE...: a fresh elevator with these settings
sched() {
	local dev=$1 s=$2 kv
	shift 2
	blkctl queue "$dev" scheduler none && blkctl queue "$dev" scheduler "$s" ||
		return 1
	for kv in "$@"; do
		blkctl queue "$dev" "iosched/${kv%%=*}" "${kv#*=}" || return 1
	done
	blkctl --json debug "$dev" >"$out/before"
}

# text LINE-PATTERN: the text dump has it
text() {
	blkctl debug "$1" >"$out/text"
	grep -Eq "$2" "$out/text" || { fail "debug $1: no line like '$2'"; grep iosched "$out/text"; return 1; }
}

# ---- mq-deadline: classes rt, be, idle ----
# writes_starved=0: a read batch never goes first while writes wait;
# 64 scheduler requests, so that reads and writes wait there together
# (the default, twice the device's 2, rarely holds both)
msg=
sched s0 mq-deadline read_expire=1 write_expire=1 writes_starved=0 &&
blkctl queue s0 nr_requests 64 &&
load s0 --iodepth=16 --name=w --rw=write --name=r --rw=randread &&
blkctl --json debug s0 >"$out/after" &&
msg=$(check "$out/before" "$out/after" "rt be idle" "expired starved" \
	'a["be"]["dispatched"] > 100' 'a["be"]["merged"] > 0' \
	'a["be"]["expired"] > 0' 'a["be"]["starved"] > 0' \
	'a["be"]["max_wait_ns"] > 0' \
	'a["rt"]["dispatched"] == 0 and a["idle"]["dispatched"] == 0') &&
	ok "mq-deadline: be $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["iosched"]["classes"]["be"])' "$out/after")" ||
	fail "mq-deadline counters: ${msg:-setup failed}"
text s0 '^  iosched be: dispatched=[1-9][0-9]* merged=[0-9]+ expired=[0-9]+ starved=[0-9]+ max_wait_us=[0-9]+$' &&
	ok "mq-deadline: text line"

# ---- kyber: domains read, write, discard, other ----
msg=
sched s0 kyber &&
load s0 --iodepth=16 --name=w --rw=write --name=r --rw=randread &&
blkctl --json debug s0 >"$out/after" &&
msg=$(check "$out/before" "$out/after" "read write discard other" "starved" \
	'a["read"]["dispatched"] > 50 and a["write"]["dispatched"] > 50' \
	'a["write"]["merged"] > 0' \
	'a["read"]["max_wait_ns"] > 0 and a["write"]["max_wait_ns"] > 0') &&
	ok "kyber: read and write counted" ||
	fail "kyber counters: ${msg:-setup failed}"
# kyber's discard domain has 64 tokens: 128 trims in flight starve it
msg=
sched k0 kyber &&
load k0 --iodepth=128 --name=t --rw=randtrim &&
blkctl --json debug k0 >"$out/after" &&
msg=$(check "$out/before" "$out/after" "read write discard other" "starved" \
	'a["discard"]["dispatched"] > 100 and a["discard"]["starved"] > 0' \
	'a["discard"]["max_wait_ns"] > 0') &&
	ok "kyber: discard domain starved" ||
	fail "kyber discard counters: ${msg:-setup failed}"
text k0 '^  iosched discard: dispatched=[1-9][0-9]* merged=[0-9]+ starved=[1-9][0-9]* max_wait_us=[0-9]+$' &&
	ok "kyber: text line"

# ---- bfq: classes rt, be, idle ----
msg=
sched s0 bfq fifo_expire_sync=1 &&
load s0 --iodepth=16 --name=w --rw=write --name=r --rw=randread &&
blkctl --json debug s0 >"$out/after" &&
msg=$(check "$out/before" "$out/after" "rt be idle" "expired" \
	'a["be"]["dispatched"] > 100' 'a["be"]["merged"] > 0' \
	'a["be"]["expired"] > 0' 'a["be"]["max_wait_ns"] > 0') &&
	ok "bfq: be counted, FIFO expiries seen" ||
	fail "bfq counters: ${msg:-setup failed}"
text s0 '^  iosched be: dispatched=[1-9][0-9]* merged=[0-9]+ expired=[0-9]+ max_wait_us=[0-9]+$' &&
	ok "bfq: text line"

# ---- none: no classes ----
blkctl queue s0 scheduler none && blkctl --json debug s0 >"$out/after" &&
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["iosched"] != {"name": "none", "classes": {}})' "$out/after" &&
	ok "none: no classes" || fail "none: $(cat "$out/after")"

finish
