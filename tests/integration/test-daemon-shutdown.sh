#!/usr/bin/env bash
# The clean-shutdown acceptance test: two NBD clients each keep 32 writes
# of unique 4 KiB patterns in flight to an io_uring device (on blocks of
# their own) and log each write the server acknowledged; blkstackd gets SIGTERM in the middle of the
# load and must exit 0; a fresh daemon on the same state directory must
# then read back every acknowledged block (and the image file must hold
# them too). Also: SIGINT is a clean stop as well.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY"
"$PY" -c 'import nbd' 2>/dev/null ||
	{ echo "SKIP: needs python3-libnbd (scripts/install-deps.sh)"; exit 77; }
BLKSTACKD_DIR=$(mktemp -d /tmp/blkstackd-test.XXXXXX)
work=$BLKSTACKD_DIR/work
mkdir -p "$work"
img=$BLKSTACKD_DIR/state/disk0.img
conf="dev add uring disk0 path=$img size=64M
export nbd disk0"
run_id=$$$RANDOM

cat >"$work/writer.py" <<'EOF'
# writer.py URI LOG RUN_ID K N: 4 KiB writes to the blocks b with
# b % N == K, each once in a shuffled order, 32 in flight; LOG gets the
# block number of each acknowledged one
import nbd, random, struct, sys
uri, logpath, run_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
k, n = int(sys.argv[4]), int(sys.argv[5])
BS, DEPTH = 4096, 32
h = nbd.NBD()
h.connect_uri(uri)
nblocks = h.get_size() // BS
order = list(range(k, nblocks, n))
nblocks = len(order)
random.Random(run_id).shuffle(order)
log = open(logpath, "w", buffering=1)
pending = {}            # cookie -> (block, buffer kept alive)
nxt = acked = failed = 0
def pattern(b):
    return struct.pack("<QQ", run_id, b) * (BS // 16)
try:
    while nxt < nblocks or pending:
        while nxt < nblocks and len(pending) < DEPTH:
            b = order[nxt]
            nxt += 1
            buf = nbd.Buffer.from_bytearray(bytearray(pattern(b)))
            pending[h.aio_pwrite(buf, b * BS)] = (b, buf)
        h.poll(1)
        for cookie in list(pending):
            try:
                if not h.aio_command_completed(cookie):
                    continue
                log.write("%d\n" % pending[cookie][0])
                acked += 1
            except nbd.Error:
                failed += 1
            del pending[cookie]
except nbd.Error as e:
    # the server went away: replies that came before the close count,
    # whatever was not acknowledged does not
    print("writer: connection ended:", e, file=sys.stderr)
    for cookie in list(pending):
        try:
            if h.aio_command_completed(cookie):
                log.write("%d\n" % pending[cookie][0])
                acked += 1
                continue
        except nbd.Error:
            pass
        failed += 1
print("writer: %d acknowledged, %d failed or unanswered" % (acked, failed))
EOF

cat >"$work/check.py" <<'EOF'
# check.py URI IMG LOG RUN_ID: every logged block holds its pattern, read
# through NBD from the fresh daemon and straight from the image file
import nbd, struct, sys
uri, img, logpath, run_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
BS = 4096
blocks = [int(l) for l in open(logpath) if l.strip()]
h = nbd.NBD()
h.connect_uri(uri)
f = open(img, "rb")
bad = 0
for b in blocks:
    want = struct.pack("<QQ", run_id, b) * (BS // 16)
    got = h.pread(BS, b * BS)
    f.seek(b * BS)
    raw = f.read(BS)
    if got != want or raw != want:
        bad += 1
        if bad <= 5:
            print("block %d: NBD %s, file %s" % (b, got[:16].hex(), raw[:16].hex()))
print("check: %d acknowledged blocks, %d bad" % (len(blocks), bad))
sys.exit(1 if bad or not blocks else 0)
EOF

start_daemon -c "$conf" || exit 1
for k in 0 1; do
	timeout 120 "$PY" "$work/writer.py" "$(nbd_uri disk0)" "$work/acked$k" \
		"$run_id" $k 2 >"$work/writer$k.out" 2>&1 &
	writers[$k]=$!
	at_exit "kill ${writers[$k]} 2>/dev/null"
done
lines() {
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}
# SIGTERM once the load is well under way
for _ in $(seq 600); do
	[ "$(lines "$work/acked1")" -ge 1000 ] && break
	_alive ${writers[1]} || break
	sleep 0.1
done
n_before=$(cat "$work"/acked? | wc -l)
t0=$(date +%s%N)
stop_daemon TERM
rc=$?
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# the writer ends when its connection does
for w in "${writers[@]}"; do
	for _ in $(seq 300); do _alive $w || break; sleep 0.1; done
	wait $w
done
cat "$work"/writer?.out
cat "$work"/acked? >"$work/acked"
n_after=$(lines "$work/acked")
if [ $rc -eq 0 ]; then
	ok "SIGTERM under load: exit 0 in $stop_ms ms ($n_before writes acknowledged at the signal, $n_after in all)"
else
	fail "SIGTERM under load: exit $rc"; tail "$DAEMON_LOG"
fi
if [ "$n_after" -lt 64 ] || [ "$n_after" -ge 16384 ]; then
	fail "the signal did not land mid-load ($n_after of 16384 blocks acknowledged)"
fi
grep -q 'disk0: flushed' "$DAEMON_LOG" && ok "disk0's cache flushed at shutdown" ||
	fail "no flush of disk0 logged"
[ ! -e "$CTL_SOCK" ] && [ ! -e "$PID_FILE" ] && [ ! -e "$NBD_SOCK" ] &&
	ok "control socket, NBD socket and pid file removed" ||
	fail "sockets or pid file left behind"

# a fresh daemon on the same state reads back every acknowledged block
start_daemon -c "$conf" || exit 1
if timeout 120 "$PY" "$work/check.py" "$(nbd_uri disk0)" "$img" "$work/acked" \
	"$run_id" >"$work/check.out" 2>&1; then
	ok "fresh daemon: $(tail -1 "$work/check.out")"
else
	fail "acknowledged writes lost"; cat "$work/check.out"
fi

# SIGINT is a clean stop too
stop_daemon INT
rc=$?
[ $rc -eq 0 ] && ok "SIGINT: exit 0" || fail "SIGINT: exit $rc"
finish
