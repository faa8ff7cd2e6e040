#!/usr/bin/env bash
# blkctl against a live blkstackd: every command family (dev, queue,
# export, unexport, stat, debug), --json parsed by Python, bad commands
# getting one error line, exit 1 and changing nothing, NBD clients seeing
# the exports, and blkctl's exit 2 (naming the socket) with no daemon.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY" nbdinfo nbdsh
[ -x "$BLKCTL" ] || { echo "FAIL: $BLKCTL is not built"; exit 1; }
out=$(mktemp -d)
at_exit "rm -rf '$out'"

# run ARGS...: blkctl; $out/o and $out/e hold stdout and stderr, $rc the code
run() {
	blkctl "$@" >"$out/o" 2>"$out/e"
	rc=$?
}

# json EXPR: EXPR (Python, d = the document) holds for the last stdout
json() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$out/o" "$1" 2>"$out/pyerr"
}

# 1. no daemon: exit 2 and the socket it tried
"$BLKCTL" --socket "$out/nothing.sock" dev ls >"$out/o" 2>"$out/e"
rc=$?
if [ $rc -eq 2 ] && grep -q "cannot reach blkstackd at $out/nothing.sock" "$out/e"; then
	ok "no daemon: exit 2, $(cat "$out/e")"
else
	fail "no daemon: exit $rc, $(cat "$out/e")"
fi
BLKSTACK_SOCKET=$out/env.sock "$BLKCTL" stat >/dev/null 2>"$out/e"
rc=$?
if [ $rc -eq 2 ] && grep -q "$out/env.sock" "$out/e"; then
	ok "\$BLKSTACK_SOCKET is the default socket"
else
	fail "\$BLKSTACK_SOCKET: exit $rc, $(cat "$out/e")"
fi
"$BLKCTL" >/dev/null 2>&1; rc1=$?
"$BLKCTL" --bogus dev ls >/dev/null 2>&1; rc2=$?
if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ]; then
	ok "usage errors: exit 2"
else
	fail "usage errors: exit $rc1 and $rc2, wanted 2"
fi

start_daemon || exit 1

run help
if [ $rc -eq 0 ] && grep -qx 'dev add DRIVER NAME \[KEY=VALUE\]...' "$out/o" &&
   grep -qx 'queue NAME \[ATTR \[VALUE\]\]' "$out/o" && grep -qx 'stat \[NAME\]' "$out/o"; then
	ok "help lists the registered commands ($(wc -l <"$out/o"))"
else
	fail "help: exit $rc"; cat "$out/o"
fi

# 2. dev add / dev ls, text and JSON
run dev add null nullb0 size=64M memory_backed=1
[ $rc -eq 0 ] && [ ! -s "$out/o" ] && ok "dev add null nullb0" ||
	fail "dev add null nullb0: exit $rc, $(cat "$out/e")"
run dev add null nullb1 size=16M memory_backed=1 irqmode=1
[ $rc -eq 0 ] || fail "dev add nullb1: exit $rc, $(cat "$out/e")"
run dev ls
if [ $rc -eq 0 ] && head -1 "$out/o" | grep -q '^NAME *MAJ:MIN *SIZE *RO *DRIVER *SCHED *EXPORTS' &&
   grep -Eq '^nullb0 +252:[0-9]+ +64M +0 +null ' "$out/o" &&
   grep -Eq '^nullb1 +252:[0-9]+ +16M ' "$out/o"; then
	ok "dev ls (lsblk-like)"
else
	fail "dev ls: exit $rc"; cat "$out/o"
fi
run --json dev ls
if [ $rc -eq 0 ] && json '[x["name"] for x in d["blockdevices"]] == ["nullb0", "nullb1"] and d["blockdevices"][0]["size"] == 64 << 20 and d["blockdevices"][0]["driver"] == "null" and d["blockdevices"][0]["maj:min"].startswith("252:")'; then
	ok "--json dev ls"
else
	fail "--json dev ls: exit $rc"; cat "$out/o" "$out/pyerr"
fi

# 3. queue: list, read, write, JSON, iosched names in the error list
run queue nullb0
if [ $rc -eq 0 ] && grep -Eq '^scheduler +\[?none' "$out/o" &&
   grep -Eq '^max_sectors_kb +[0-9]+$' "$out/o" &&
   grep -Eq '^logical_block_size +512$' "$out/o" &&
   grep -Eq '^nr_hw_queues +[0-9]+$' "$out/o"; then
	ok "queue nullb0 lists the sysfs attributes"
else
	fail "queue nullb0: exit $rc"; cat "$out/o"
fi
run queue nullb0 max_sectors_kb 64
run queue nullb0 max_sectors_kb
if [ $rc -eq 0 ] && [ "$(cat "$out/o")" = 64 ]; then
	ok "queue nullb0 max_sectors_kb 64, read back"
else
	fail "queue max_sectors_kb: exit $rc, '$(cat "$out/o")'"
fi
run queue nullb1 write_cache 'write back'
if [ $rc -eq 0 ] && [ "$(blkctl queue nullb1 write_cache)" = "write back" ]; then
	ok "a value with a blank: queue nullb1 write_cache 'write back'"
else
	fail "write_cache 'write back': exit $rc, $(cat "$out/e")"
fi
run queue nullb0 nomerges 2
run --json queue nullb0
if [ $rc -eq 0 ] && json 'd["device"] == "nullb0" and d["queue"]["nomerges"] == "2" and d["queue"]["max_sectors_kb"] == "64" and "rotational" in d["queue"]'; then
	ok "--json queue nullb0"
else
	fail "--json queue: exit $rc"; cat "$out/o" "$out/pyerr"
fi

# the scheduler's own attributes appear as iosched/ATTR
if blkctl queue nullb1 scheduler | grep -qw mq-deadline; then
	blkctl queue nullb1 scheduler mq-deadline
	run --json queue nullb1
	if [ $rc -eq 0 ] && json 'd["queue"]["scheduler"].find("[mq-deadline]") >= 0 and any(k.startswith("iosched/") for k in d["queue"])' &&
	   [ -n "$(blkctl queue nullb1 iosched/read_expire)" ]; then
		ok "queue nullb1 scheduler mq-deadline: iosched/* listed and readable"
	else
		fail "iosched attributes"; cat "$out/o"
	fi
	blkctl queue nullb1 scheduler none
fi

# 4. bad commands: exit 1, one line on stderr, nothing on stdout, and
# the state exactly as before
snapshot() {
	{ blkctl dev ls; blkctl queue nullb0; blkctl queue nullb1; blkctl export ls; } 2>&1
}
before=$(snapshot)
bad() {
	local want=$1 err
	shift
	run "$@"
	mapfile -t err <"$out/e"
	if [ $rc -eq 1 ] && [ ${#err[@]} -eq 1 ] && [ ! -s "$out/o" ] &&
	   [[ ${err[0]} == *"$want"* ]]; then
		ok "bad: $* -> ${err[0]:0:100}"
	else
		fail "bad: $* (exit $rc, wanted one line with '$want'): $(cat "$out/e" "$out/o")"
	fi
}
bad "unknown command 'bogus'; valid: help, dev add, dev del, dev ls, queue" bogus
bad "dev: which one? valid: dev add, dev del, dev ls" dev
bad "dev frob: unknown command" dev frob
bad "usage: dev add DRIVER NAME [KEY=VALUE]..." dev add null
bad "driver 'nosuch': valid drivers are null" dev add nosuch x size=1M
bad "device 'nullb0' already exists" dev add null nullb0 size=1M
bad "size" dev add null n2 size=1M,bogus=1
bad "'size': driver parameters are KEY=VALUE" dev add null n2 size
bad "device name 'a b'" dev add null 'a b' size=1M
bad "no device 'nosuch'" dev del nosuch
bad "usage: dev del NAME" dev del
bad "no device 'nosuch'" queue nosuch
bad "no queue attribute 'nosuchattr'; valid: scheduler nr_requests" queue nullb0 nosuchattr 1
bad "max_sectors_kb" queue nullb0 max_sectors_kb abc
bad "'logical_block_size' is read-only" queue nullb0 logical_block_size 4096
bad "scheduler 'nosuch': valid values are" queue nullb0 scheduler nosuch
bad "usage: queue NAME [ATTR [VALUE]]" queue nullb0 nomerges 1 extra
bad "no device 'nosuch'" export nbd nosuch
bad "'bogus': valid options are name=EXPORT and readonly" export nbd nullb0 bogus
bad "no export 'nosuch'" unexport nosuch
bad "no device 'nosuch'" stat nosuch
bad "usage: debug NAME" debug
bad "ioprio class 'bogus': valid classes are rt, be, idle and none" export ioprio nosuch bogus
bad "ioprio level '9': valid levels are 0 (highest) .. 7" export ioprio nosuch be:9
bad "ioprio class idle takes no level" export ioprio nosuch idle:3
bad "weight '0': valid weights are 1..1000" export ioprio nosuch be weight=0
bad "'w=3': the valid option is weight=1..1000" export ioprio nosuch be w=3
bad "no export 'nosuch' (blkctl export ls lists them)" export ioprio nosuch rt:1
bad "connection 'x': an id is a number" conn ioprio x be
bad "no connection 4242 in transmission" conn ioprio 4242 idle
bad "conn: which one? valid: conn ls, conn ioprio" conn
after=$(snapshot)
if [ "$before" = "$after" ]; then
	ok "state unchanged after the bad commands"
else
	fail "state changed by bad commands"; diff <(echo "$before") <(echo "$after")
fi

# the protocol by hand: one line in, output and a status line out
proto() {
	"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode(), end="")' "$CTL_SOCK" "$1"
}
if [ "$(proto 'dev add null "unterminated')" = "error: unterminated \" quote" ] &&
   [ "$(proto "  # a comment")" = "error: empty command" ] &&
   [ "$(proto "dev  ls" | tail -n 1)" = ok ] &&
   [ "$(proto "queue 'nullb0' \"max_sectors_kb\"")" = "$(printf '64\nok')" ]; then
	ok "protocol: quoting, comments, output then a status line"
else
	fail "protocol by hand"
fi
after=$(snapshot)
[ "$before" = "$after" ] || fail "state changed by bad protocol lines"

# 5. exports, seen by real NBD clients
run export nbd nullb0
run export nbd nullb1 name=ro1 readonly
[ $rc -eq 0 ] || fail "export nbd nullb1 name=ro1 readonly: $(cat "$out/e")"
bad "ro1 already exists" export nbd nullb0 name=ro1
run export ls
if [ $rc -eq 0 ] && grep -Eq '^nullb0 +nullb0 +rw +0 +none +0$' "$out/o" &&
   grep -Eq '^ro1 +nullb1 +ro +0 +none +0$' "$out/o"; then
	ok "export ls"
else
	fail "export ls: exit $rc"; cat "$out/o" "$out/e"
fi
run --json dev ls
json 'd["blockdevices"][0]["exports"] == ["nullb0"] and d["blockdevices"][1]["exports"] == ["ro1"]' &&
	ok "dev ls shows the exports" || { fail "dev ls exports"; cat "$out/o"; }
if timeout 20 nbdinfo --list "$(nbd_uri nullb0)" >"$out/list" 2>&1 &&
   grep -q 'export="nullb0"' "$out/list" && grep -q 'export="ro1"' "$out/list"; then
	ok "nbdinfo --list shows nullb0 and ro1"
else
	fail "nbdinfo --list"; cat "$out/list"
fi
# a write and read back through NBD, then the diskstats count it
if timeout 20 nbdsh -u "$(nbd_uri nullb0)" -c '
buf = b"\x5a" * 65536
h.pwrite(buf, 1 << 20)
h.flush()
assert h.pread(65536, 1 << 20) == buf
' 2>"$out/nbdsh"; then
	ok "NBD write + read back on nullb0"
else
	fail "NBD I/O on nullb0"; cat "$out/nbdsh"
fi
if timeout 20 nbdsh -u "$(nbd_uri ro1)" -c '
assert h.is_read_only()
try:
    h.pwrite(b"x" * 512, 0)
except nbd.Error:
    pass
else:
    raise Exception("write to a readonly export succeeded")
' 2>"$out/nbdsh"; then
	ok "readonly export refuses writes"
else
	fail "readonly export"; cat "$out/nbdsh"
fi

# the nbd driver from blkctl: an nbdkit memory export as a device of ours,
# served again by our NBD server; what goes in one end comes out the other
if command -v nbdkit >/dev/null; then
	nbdkit --exit-with-parent -U "$out/kit.sock" -P "$out/kit.pid" memory 32M &
	for _ in $(seq 100); do [ -S "$out/kit.sock" ] && break; sleep 0.1; done
	at_exit "kill \$(cat '$out/kit.pid' 2>/dev/null) 2>/dev/null"
	run dev add nbd remote0 "uri=nbd+unix:///?socket=$out/kit.sock"
	if [ $rc -eq 0 ] && blkctl dev ls | grep -Eq '^remote0 +252:[0-9]+ +32M +0 +nbd ' &&
	   blkctl export nbd remote0 &&
	   timeout 20 nbdsh -u "$(nbd_uri remote0)" -c 'h.pwrite(b"\x3c" * 8192, 4096); h.flush()' &&
	   timeout 20 nbdsh -u "nbd+unix:///?socket=$out/kit.sock" \
		-c 'assert h.pread(8192, 4096) == b"\x3c" * 8192'; then
		ok "dev add nbd remote0 (nbdkit), exported again, data reaches nbdkit"
	else
		fail "nbd driver through blkctl (exit $rc): $(cat "$out/e")"
	fi
	run dev del remote0
	[ $rc -eq 0 ] || fail "dev del remote0: $(cat "$out/e")"
else
	echo "skip the nbd driver check: no nbdkit (scripts/install-deps.sh)"
fi
bad "device name 'it's a b'" dev add null "it's a b" size=1M

# 6. stat: /proc/diskstats lines, JSON
run stat nullb0
if [ $rc -eq 0 ] && [ "$(wc -l <"$out/o")" -eq 1 ] &&
   [ "$(awk '{print NF}' "$out/o")" -eq 20 ] &&
   awk '$1 == 252 && $3 == "nullb0" && $10 >= 128 && $8 >= 1 && $4 >= 1 { f = 1 } END { exit !f }' "$out/o"; then
	ok "stat nullb0: $(cat "$out/o")"
else
	fail "stat nullb0: exit $rc"; cat "$out/o"
fi
run --json stat
if [ $rc -eq 0 ] && json 'len(d["diskstats"]) == 2 and d["diskstats"][0]["name"] == "nullb0" and d["diskstats"][0]["write_sectors"] >= 128 and d["diskstats"][0]["in_flight"] == 0'; then
	ok "--json stat"
else
	fail "--json stat: exit $rc"; cat "$out/o" "$out/pyerr"
fi

# 7. debug: the queue's state dump
run debug nullb0
if [ $rc -eq 0 ] && grep -q 'nullb0' "$out/o" && grep -q 'nr_hw_queues' "$out/o"; then
	ok "debug nullb0 ($(wc -l <"$out/o") lines)"
else
	fail "debug nullb0: exit $rc"; head "$out/o"
fi
run --json debug nullb0
json 'd["device"] == "nullb0" and d["iosched"]["name"] == "none" and d["iosched"]["classes"] == {} and len(d["hctx"]) >= 1' &&
	ok "--json debug nullb0" || { fail "--json debug nullb0"; cat "$out/o"; }

# 8. unexport and dev del (which removes the device's exports first)
run unexport ro1
run export ls
[ $rc -eq 0 ] && ! grep -q '^ro1 ' "$out/o" && ok "unexport ro1" ||
	fail "unexport ro1"
run dev del nullb0
run --json export ls
if [ $rc -eq 0 ] && json 'd["exports"] == []'; then
	ok "dev del nullb0 removed its export too"
else
	fail "dev del with an export"; cat "$out/o"
fi
run dev ls
[ "$(wc -l <"$out/o")" -eq 2 ] && ok "dev ls after dev del" || fail "dev ls after dev del"

# 9. idle clients stall nobody: two connections that send nothing (one
# with half a line) while blkctl works; they are still open at the stop
"$PY" -c '
import socket, sys, time
a = socket.socket(socket.AF_UNIX); a.connect(sys.argv[1])
b = socket.socket(socket.AF_UNIX); b.connect(sys.argv[1]); b.sendall(b"dev l")
time.sleep(8)' "$CTL_SOCK" &
idle=$!
at_exit "kill $idle 2>/dev/null"
sleep 0.5
start=$(date +%s%N)
run dev ls
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc -eq 0 ] && [ $ms -lt 3000 ]; then
	ok "idle clients do not hold up blkctl (${ms} ms)"
else
	fail "blkctl behind idle clients: exit $rc, ${ms} ms"
fi

# 10. clean stop: exit 0, socket and pid file gone
stop_daemon
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$CTL_SOCK" ] && [ ! -e "$PID_FILE" ]; then
	ok "SIGTERM: exit 0, socket and pid file removed"
else
	fail "stop: exit $rc"; tail "$DAEMON_LOG"
fi
finish
