#!/usr/bin/env bash
# blktrace through blkstackd, read by the real blkparse and btt: NBD
# workloads (random reads, split writes, merging sequential writes) traced
# with "trace NAME setup/start/teardown"; blkparse reports no skips and
# per-action counts that match the workload and the diskstats; merges and
# splits carry the right sectors; plugs and unplugs pair; btt's Q2C and
# D2C means agree with the live statistics within 1%. Then the sysfs path
# (seed 000: enable 1 then 0), the merged stream into "blkparse -i -"
# through a FIFO and through blkctl's own stdout ("trace run -w N -o - |
# blkparse -i -", and "setup -o -" then start/stop/teardown), other
# commands served while a run waits, a stalled stream reader that blocks
# neither I/O nor control, "trace run -w -D", "trace live", bad input, and
# SIGTERM while a run waits.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY" nbdsh blkparse btt
[ -x "$BLKCTL" ] || { echo "FAIL: $BLKCTL is not built"; exit 1; }
out=$(mktemp -d)
at_exit "rm -rf '$out'"

start_daemon || exit 1
blkctl dev add null nb0 size=64M irqmode=1 completion_nsec=20000 >/dev/null &&
	blkctl queue nb0 max_sectors_kb 64 >/dev/null &&
	blkctl export nbd nb0 >/dev/null || { fail "device setup"; finish; }

# the workload: 200 random 4k reads, 50 128k writes (each split in two),
# 256 sequential 4k writes in flight at once (merged)
workload() {
	timeout 60 nbdsh -u "$(nbd_uri nb0)" -c '
import random
random.seed(5)
for i in range(200):
    h.pread(4096, random.randrange(0, 16000) * 4096)
for i in range(50):
    h.pwrite(b"x" * 131072, (1 << 25) + i * 131072)
cmds = [h.aio_pwrite(b"y" * 4096, (1 << 24) + i * 4096) for i in range(256)]
while h.aio_in_flight() > 0:
    h.poll(-1)
'
}

# diskstats: reads + writes completed
ios_done() {
	blkctl stat | awk '$3 == "nb0" { print $4 + $8 }'
}

# 1. the ioctl path into per-CPU files
before=$(ios_done)
blkctl trace nb0 setup dir="$out/t1" >"$out/e" 2>&1 &&
	blkctl trace nb0 start >>"$out/e" 2>&1 || fail "setup/start: $(cat "$out/e")"
workload 2>"$out/nbd" || fail "workload: $(cat "$out/nbd")"
blkctl trace nb0 stop >/dev/null || fail "stop"
blkctl --json trace nb0 stats >"$out/stats.json" || fail "stats"
blkctl trace nb0 teardown >/dev/null || fail "teardown"
after=$(ios_done)

(cd "$out/t1" && blkparse -i nb0 -d "$out/t1.bin" >"$out/t1.txt" 2>&1) ||
	fail "blkparse exit $?"
grep -q '^Skips: 0 forward' "$out/t1.txt" && ok "blkparse: 0 skips" ||
	fail "blkparse skips: $(grep Skips "$out/t1.txt")"

"$PY" - "$out/t1.txt" "$((after - before))" >"$out/check1" 2>&1 <<'EOF'
import re, sys
text, issued = sys.argv[1], int(sys.argv[2])
ev = []
pat = re.compile(r'^\s*\d+,\d+\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(.*)$')
for line in open(text):
    m = pat.match(line)
    if m:
        ev.append((m.group(5), m.group(6), m.group(7)))
n = {}
for a, _, _ in ev:
    n[a] = n.get(a, 0) + 1
def rng(rest):
    s, _, b = rest.split()[:3]
    return int(s), int(b)
bad = []
# every queued bio (and each piece a split made) got a request or was
# merged; every request completed
if n.get('Q', 0) + n.get('X', 0) != n.get('G', 0) + n.get('M', 0) + n.get('F', 0):
    bad.append('Q+X %d != G+M+F %d' % (n.get('Q', 0) + n.get('X', 0), n.get('G', 0) + n.get('M', 0) + n.get('F', 0)))
if not (n.get('C') == n.get('D') == n.get('G') == issued):
    bad.append('C %s D %s G %s diskstats %d' % (n.get('C'), n.get('D'), n.get('G'), issued))
# one Q per bio, as the kernel: the rest of a split bio is not queued again
if n.get('Q') != 200 + 50 + 256:
    bad.append('Q %s, wanted %d' % (n.get('Q'), 200 + 50 + 256))
if n.get('X') != 50:
    bad.append('X %s, wanted 50' % n.get('X'))
if n.get('P', 0) != n.get('U', 0) + n.get('UT', 0):
    bad.append('P %s U %s UT %s' % (n.get('P'), n.get('U'), n.get('UT')))
if n.get('M', 0) + n.get('F', 0) == 0:
    bad.append('no merges')
# splits: "s / s+128" for a 256-sector bio cut at 64 KiB
for a, _, rest in ev:
    if a == 'X':
        s, _, ns = rest.split()[:3]
        if int(ns) != int(s) + 128:
            bad.append('X ' + rest)
# merges: M at s follows a Q ending at s; F at s+n precedes a Q at s+n
ends, starts = set(), set()
for a, _, rest in ev:
    if a == 'M':
        s, b = rng(rest)
        if s not in ends:
            bad.append('M without a Q ending at its sector: ' + rest)
    if a == 'F':
        s, b = rng(rest)
        if s + b not in starts:
            bad.append('F without a Q starting at its end: ' + rest)
    if a == 'Q':
        s, b = rng(rest)
        ends.add(s + b)
        starts.add(s)
print(' '.join('%s=%d' % kv for kv in sorted(n.items())))
print('\n'.join(bad[:10]))
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && ok "blkparse counts match the workload: $(head -1 "$out/check1")" ||
	fail "blkparse counts: $(cat "$out/check1")"
grep -q 'nbd-conn-' "$out/t1.txt" && ok "process notes: [nbd-conn-N]" ||
	fail "no [nbd-conn-N] in blkparse output"

# btt against the live statistics
# in $out: btt writes its *_iops_fp.dat/*_mbps_fp.dat to the current directory
(cd "$out" && btt -i "$out/t1.bin" >"$out/btt.txt" 2>&1) || fail "btt exit $?"
"$PY" - "$out/btt.txt" "$out/stats.json" >"$out/check2" 2>&1 <<'EOF'
import json, sys
btt = {}
for line in open(sys.argv[1]):
    w = line.split()
    if len(w) == 5 and w[0] in ('Q2C', 'D2C', 'Q2G', 'I2D') and w[0] not in btt:
        btt[w[0]] = (float(w[2]) * 1e9, int(w[4]))
st = json.load(open(sys.argv[2]))['stages']
bad = []
for k in ('Q2C', 'D2C'):
    if k not in btt:
        bad.append('btt has no ' + k)
        continue
    live = st[k]['avg_ns']
    print('%s btt %.0f ns (N %d), live %.0f ns (N %d)' % (k, btt[k][0], btt[k][1], live, st[k]['n']))
    if abs(btt[k][0] - live) > 0.01 * live:
        bad.append(k + ' differs by more than 1%')
print('\n'.join(bad))
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] && ok "btt agrees with the live stats: $(tr '\n' ' ' <"$out/check2")" ||
	fail "btt vs live: $(cat "$out/check2")"

# 2. the sysfs path: seed 000 (enable 1 then 0), and ioctl setup + sysfs off
if blkctl queue nb0 trace/enable 1 >/dev/null &&
   blkctl queue nb0 trace/act_mask read,complete >/dev/null &&
   timeout 20 nbdsh -u "$(nbd_uri nb0)" -c 'h.pread(4096, 0)' &&
   blkctl queue nb0 trace/enable 0 >/dev/null &&
   [ "$(blkctl queue nb0 trace/enable)" = 0 ] &&
   blkctl trace nb0 stats | grep -Eq '^events [1-9]'; then
	ok "sysfs: trace/enable 1, act_mask, I/O, trace/enable 0"
else
	fail "sysfs enable/disable"
fi
if blkctl trace nb0 setup >/dev/null && blkctl trace nb0 start >/dev/null &&
   blkctl queue nb0 trace/enable 0 >/dev/null &&
   ! blkctl trace nb0 stop >/dev/null 2>&1 &&
   blkctl trace nb0 setup >/dev/null && blkctl trace nb0 start >/dev/null &&
   ! blkctl trace nb0 start >/dev/null 2>"$out/e" &&
   grep -q 'already running' "$out/e" &&
   blkctl trace nb0 teardown >/dev/null; then
	ok "ioctl setup + sysfs disable; start twice refused; teardown while running"
else
	fail "control orders through the daemon"
fi

# 3. the merged stream into blkparse -i - through a FIFO
mkfifo "$out/fifo"
timeout 60 blkparse -i - <"$out/fifo" >"$out/stream.txt" 2>&1 &
bp=$!
at_exit "kill $bp 2>/dev/null"
sleep 0.2
if blkctl trace nb0 setup out="$out/fifo" >/dev/null &&
   blkctl trace nb0 start >/dev/null &&
   timeout 20 nbdsh -u "$(nbd_uri nb0)" -c '
for i in range(100):
    h.pread(4096, i * 8192)
' && blkctl trace nb0 teardown >/dev/null && wait $bp &&
   [ "$(awk '$6 == "Q"' "$out/stream.txt" | wc -l)" -eq 100 ] &&
   [ "$(awk '$6 == "C"' "$out/stream.txt" | wc -l)" -eq 100 ] &&
   grep -q '^Skips: 0 forward' "$out/stream.txt"; then
	ok "out=FIFO | blkparse -i -: 100 Q, 100 C, 0 skips"
else
	fail "stream: $(tail -5 "$out/stream.txt")"
fi

# every Q has a C (by sector and size), 0 skips, N of each
stream_ok() {	# stream_ok FILE N
	"$PY" - "$1" "$2" <<'EOF'
import re, sys
q, c, skips = [], [], None
for line in open(sys.argv[1]):
    w = line.split()
    if len(w) >= 10 and re.match(r'^\d+,\d+$', w[0]) and w[8] == '+':
        if w[5] == 'Q':
            q.append((int(w[7]), int(w[9])))
        elif w[5] == 'C':
            c.append((int(w[7]), int(w[9])))
    m = re.match(r'^Skips: (\d+) forward', line)
    if m:
        skips = int(m.group(1))
n = int(sys.argv[2])
bad = []
if skips != 0:
    bad.append('skips %s' % skips)
if len(q) != n or len(c) != n:
    bad.append('Q %d C %d, wanted %d' % (len(q), len(c), n))
if sorted(q) != sorted(c):
    bad.append('a Q without its C')
print('Q %d C %d skips %s' % (len(q), len(c), skips), *bad)
sys.exit(1 if bad else 0)
EOF
}

# wait until the trace on $1 is in state $2 (1 set up, 2 running)
trace_state_is() {
	for _ in $(seq 100); do
		blkctl --json trace "$1" stats 2>/dev/null |
			grep -q "\"state\": $2," && return 0
		sleep 0.1
	done
	return 1
}

reads100() {
	timeout 30 nbdsh -u "$(nbd_uri nb0)" -c '
for i in range(100):
    h.pread(4096, i * 8192 + 4096)
'
}

# 3b. the literal pipe: "trace run -w N -o - | blkparse -i -", with other
# commands (this device's, another's, dev ls, stat, a second run) served
# while the run waits
blkctl dev add null nb1 size=16M >/dev/null || fail "dev add nb1"
( "$BLKCTL" --socket "$CTL_SOCK" trace nb0 run -w 8 -o - 2>"$out/run-o.err" |
	timeout 60 blkparse -i - >"$out/run-o.txt" 2>&1 ) &
runpipe=$!
at_exit "kill $runpipe 2>/dev/null"
if trace_state_is nb0 2; then
	reads100 2>"$out/nbd" || fail "workload during run: $(cat "$out/nbd")"
	t0=$(date +%s%N)
	served=$(blkctl dev ls | grep -c '^nb') &&
		blkctl stat >/dev/null && blkctl trace nb0 stats >/dev/null &&
		blkctl queue nb1 scheduler >/dev/null &&
		blkctl trace nb1 run -w 1 >/dev/null
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	# all answered while nb0's run still waits
	kill -0 $runpipe 2>/dev/null && [ $rc -eq 0 ] && [ "$served" = 2 ] &&
		ok "while a run waits: dev ls, stat, trace stats, queue nb1, a run on nb1 served in $ms ms" ||
		fail "commands during a run: rc $rc, $served devices, $ms ms, run still going: $(kill -0 $runpipe 2>/dev/null && echo yes || echo no)"
else
	fail "trace run -o - never started"
fi
wait $runpipe
res=$(stream_ok "$out/run-o.txt" 100) &&
	grep -q '^Q2C' "$out/run-o.err" &&
	ok "trace run -w 8 -o - | blkparse -i -: $res, status to stderr" ||
	fail "trace run -o - | blkparse: $res; $(tail -3 "$out/run-o.txt") $(cat "$out/run-o.err")"

# the device of a waiting run removed: the run ends with what it traced
blkctl trace nb1 run -w 30 -D "$out/t-del" >"$out/run-del.txt" 2>&1 &
rundel=$!
if trace_state_is nb1 2 && blkctl dev del nb1 >/dev/null; then
	t0=$(date +%s%N)
	wait $rundel
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $rc -eq 0 ] && [ $ms -lt 5000 ] && grep -q '^Q2C' "$out/run-del.txt" &&
		[ "$(blkctl dev ls | grep -c '^nb1 ')" = 0 ] &&
		ok "dev del during trace run -w 30: served, the run ended $ms ms later" ||
		fail "dev del during trace run: rc $rc, $ms ms, $(cat "$out/run-del.txt")"
else
	fail "dev del during trace run"
	kill $rundel 2>/dev/null
fi

# 3c. "setup -o -": the stream outlives that blkctl and ends at stop
( "$BLKCTL" --socket "$CTL_SOCK" trace nb0 setup -o - 2>"$out/setup-o.err" |
	timeout 60 blkparse -i - >"$out/setup-o.txt" 2>&1 ) &
setpipe=$!
at_exit "kill $setpipe 2>/dev/null"
if trace_state_is nb0 1 && blkctl trace nb0 start >/dev/null &&
   reads100 2>"$out/nbd" && blkctl trace nb0 stop >/dev/null; then
	# blkparse ends at stop (end of file), before teardown
	for _ in $(seq 100); do
		kill -0 $setpipe 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $setpipe 2>/dev/null; then
		fail "setup -o -: the stream did not end at stop"
	else
		wait $setpipe
		res=$(stream_ok "$out/setup-o.txt" 100) &&
			ok "setup -o - | blkparse -i -, start, stop (end of file), teardown: $res" ||
			fail "setup -o -: $res; $(tail -3 "$out/setup-o.txt")"
	fi
else
	fail "setup -o - / start / stop: $(cat "$out/setup-o.err" "$out/nbd")"
fi
blkctl trace nb0 teardown >/dev/null || fail "teardown after setup -o -"

# 3d. a reader that never reads: I/O and stop go on, the drops counted
( "$BLKCTL" --socket "$CTL_SOCK" trace nb0 setup -o - buf_size=65536 buf_nr=1 |
	sleep 20 >/dev/null 2>&1 ) &
stall=$!
at_exit "kill $stall 2>/dev/null"
if trace_state_is nb0 1 && blkctl trace nb0 start >/dev/null &&
   timeout 60 nbdsh -u "$(nbd_uri nb0)" -c '
cmds = [h.aio_pread(nbd.Buffer(4096), (i % 4096) * 4096) for i in range(3000)]
while h.aio_in_flight() > 0:
    h.poll(-1)
' 2>"$out/nbd"; then
	t0=$(date +%s%N)
	blkctl trace nb0 stop >/dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	dropped=$(blkctl trace nb0 stats | awk '/^events/ { print $4 }')
	[ $ms -lt 3000 ] && [ "${dropped:-0}" -gt 0 ] &&
		ok "stalled stream reader: 3000 reads done, stop in $ms ms, $dropped drops counted" ||
		fail "stalled reader: stop $ms ms, dropped '$dropped'"
else
	fail "stalled reader: setup/start/I-O: $(cat "$out/nbd")"
fi
blkctl trace nb0 teardown >/dev/null || fail "teardown after a stalled stream"

# "-o -" needs the descriptor: a client that passes none is told so
"$PY" - "$CTL_SOCK" >"$out/nofd" 2>&1 <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"trace nb0 setup -o -\n")
print(s.makefile().read())
EOF
grep -q "^error: trace: -o - streams to the descriptor" "$out/nofd" &&
	[ "$(blkctl --json trace nb0 stats | grep -o '"state": [0-9]')" = '"state": 0' ] &&
	ok "-o - without a passed descriptor: a clear error, nothing set up" ||
	fail "-o - without a descriptor: $(cat "$out/nofd")"

# 4. one-shot run and live text while I/O runs
# I/O for 6 s in the background; returns once the first read is done
bg_io() {
	rm -f "$out/io-started"
	timeout 30 nbdsh -u "$(nbd_uri nb0)" -c '
import time
h.pread(4096, 0)
open("'"$out/io-started"'", "w").close()
end = time.time() + 6
i = 0
while time.time() < end:
    h.pread(4096, (i % 4096) * 4096)
    i += 1
' &
	io=$!
	at_exit "kill $io 2>/dev/null"
	for _ in $(seq 200); do
		[ -e "$out/io-started" ] && return 0
		sleep 0.1
	done
	fail "background I/O did not start"
}
bg_io
if blkctl trace nb0 run -w 1 -D "$out/t4" >"$out/run.txt" 2>&1 &&
   grep -q '^Q2C' "$out/run.txt" &&
   (cd "$out/t4" && blkparse -i nb0 >"$out/t4.txt" 2>&1) &&
   [ "$(awk '$6 == "Q"' "$out/t4.txt" | wc -l)" -gt 0 ]; then
	ok "trace run -w 1 -D: $(awk '$6 == "Q"' "$out/t4.txt" | wc -l) Q events"
else
	fail "trace run: $(cat "$out/run.txt")"
fi
if blkctl trace nb0 live -w 1 >"$out/live.txt" 2>&1 &&
   grep -Eq '^ *252,[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+\.[0-9]{9} +[0-9]+ +Q +R [0-9]+ \+ 8 \[nbd-conn-[0-9]+\]$' "$out/live.txt"; then
	ok "trace live: $(grep -c ' Q ' "$out/live.txt") Q lines in blkparse format"
else
	fail "trace live: $(head -3 "$out/live.txt")"
fi
wait $io 2>/dev/null
# live on a trace already set up listens to it
bg_io
if blkctl trace nb0 setup act_mask=complete >/dev/null &&
   blkctl trace nb0 start >/dev/null &&
   blkctl trace nb0 live -w 1 >"$out/live2.txt" 2>&1 &&
   blkctl trace nb0 teardown >/dev/null &&
   grep -q ' C   R ' "$out/live2.txt" && ! grep -q ' Q   R ' "$out/live2.txt"; then
	ok "trace live on a running trace: $(grep -c ' C ' "$out/live2.txt") C lines, its act_mask applied"
else
	fail "trace live on a running trace: $(head -3 "$out/live2.txt")"
fi
wait $io 2>/dev/null

# 5. bad input changes nothing
if ! blkctl trace nb0 setup bogus=1 >/dev/null 2>"$out/e" &&
   grep -q "unknown option 'bogus=1'" "$out/e" &&
   ! blkctl trace nb0 start >/dev/null 2>"$out/e" &&
   grep -q 'no trace set up' "$out/e" &&
   ! blkctl queue nb0 trace/act_mask nope >/dev/null 2>"$out/e" &&
   grep -q "unknown category 'nope'" "$out/e" &&
   [ "$(blkctl queue nb0 trace/enable)" = 0 ]; then
	ok "bad input: one clear error, nothing set up"
else
	fail "bad input: $(cat "$out/e")"
fi
# 6. SIGTERM while "trace run -w 60 -o -" waits: the run is cut short and
# answered, the stream ends, the daemon exits 0 at once
( "$BLKCTL" --socket "$CTL_SOCK" trace nb0 run -w 60 -o - 2>"$out/term.err" |
	timeout 60 blkparse -i - >"$out/term.txt" 2>&1 ) &
termpipe=$!
at_exit "kill $termpipe 2>/dev/null"
if trace_state_is nb0 2; then
	t0=$(date +%s%N)
	stop_daemon TERM
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	# blkparse ends (end of file) rather than at its time limit
	wait $termpipe
	bprc=$?
	[ $rc -eq 0 ] && [ $ms -lt 10000 ] && [ $bprc -eq 0 ] &&
		grep -q 'shutting down' "$out/term.err" &&
		ok "SIGTERM during trace run -w 60: exit 0 in $ms ms, run told, stream ended" ||
		fail "SIGTERM during a run: rc $rc, $ms ms, blkparse $bprc, $(cat "$out/term.err")"
else
	fail "trace run -w 60 never started"
fi
finish
