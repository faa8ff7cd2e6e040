#!/usr/bin/env bash
# The I/O priority and weight of NBD connections reach the schedulers
# (issue 4 point 6): an export made idle in the config file, then read by
# qemu-io, shows its requests in mq-deadline's idle class and nowhere
# else; a live client (nbd.py under /usr/bin/python3) shown by `conn ls`
# moves to rt:2 with `conn ioprio` and its next requests are counted as rt;
# under bfq `export ioprio ... weight=300` gives the open connection's
# queue and a new client's queue weight 300, and `conn ioprio ... weight=700`
# changes the live one's. Bad input changes nothing.
set -u
. "$(dirname "$0")/lib.sh"
need qemu-io "$PY"
"$PY" -c 'import nbd' 2>/dev/null ||
	{ echo "SKIP: needs python3-libnbd under $PY"; exit 77; }

start_daemon -c "dev add null n0 size=64M,memory_backed=1
queue n0 scheduler mq-deadline
export nbd n0
export ioprio n0 idle" || exit 1
out=$BLKSTACKD_DIR/out
mkdir -p "$out"
URI=$(nbd_uri n0)

# py EXPR FILE: evaluate EXPR over the JSON in FILE as d; print or fail
py() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[2]))
r = eval(sys.argv[1])
if r is False:
    sys.exit(1)
if r is not True:
    print(r)' "$1" "$2"
}

# counters FILE: mq-deadline's per-class dispatched counts, "rt be idle"
counters() {
	blkctl --json debug n0 >"$1" &&
	py '" ".join(str(d["iosched"]["classes"][c]["dispatched"]) for c in ("rt", "be", "idle"))' "$1"
}

# delta BEFORE AFTER: "drt dbe didle"
delta() {
	local -a b=($1) a=($2)
	echo "$((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2]))"
}

# ---- the config's export ioprio ----
blkctl --json export ls >"$out/exp"
py 'd["exports"][0]["ioprio"] == "idle" and d["exports"][0]["weight"] == 0' "$out/exp" &&
	ok "config: export ioprio n0 idle applied" || fail "config: $(cat "$out/exp")"

# ---- a new client (qemu-io) gets the export's class ----
c0=$(counters "$out/c0")
args=()
for i in $(seq 0 31); do
	args+=(-c "read $((i * 65536)) 4k")
done
if timeout 60 qemu-io -f raw "${args[@]}" "$URI" >"$out/qio" 2>&1; then
	c1=$(counters "$out/c1")
	d=$(delta "$c0" "$c1")
	read -r drt dbe didle <<<"$d"
	if [ "$didle" -ge 32 ] && [ "$drt" -eq 0 ] && [ "$dbe" -eq 0 ]; then
		ok "qemu-io on an idle export: 32 reads dispatched as idle (rt be idle +$d)"
	else
		fail "qemu-io on an idle export: rt be idle moved by $d"
	fi
else
	fail "qemu-io: $(tail -3 "$out/qio")"
fi

# ---- a live client, controlled line by line ----
coproc CLIENT { "$PY" -u -c '
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
print("connected", flush=True)
for line in sys.stdin:
    n = int(line)
    for i in range(n):
        h.pread(4096, i * 65536)
    print("done", flush=True)
h.shutdown()
' "$URI" 2>"$out/client.err"; }
at_exit "kill $CLIENT_PID 2>/dev/null"
# client_read N: N reads, one at a time, all answered
client_read() {
	local reply
	echo "$1" >&"${CLIENT[1]}" &&
	read -r -t 30 reply <&"${CLIENT[0]}" && [ "$reply" = done ]
}
read -r -t 30 hello <&"${CLIENT[0]}"
if [ "${hello:-}" != connected ]; then
	fail "python client: $(cat "$out/client.err")"
	finish
fi

blkctl --json conn ls >"$out/conns"
id=$(py '[c["id"] for c in d["connections"] if c["export"] == "n0"][0]' "$out/conns")
if py "len(d['connections']) == 1 and d['connections'][0] == {'id': $id, 'export': 'n0', 'peer': 'unix', 'comm': 'nbd-conn-$id', 'ioprio': 'idle', 'weight': 0, 'structured': True, 'extended': False}" "$out/conns"; then
	ok "conn ls --json: connection $id, nbd-conn-$id, idle"
else
	fail "conn ls --json: $(cat "$out/conns")"
fi
blkctl conn ls >"$out/conns.txt"
grep -Eq "^$id +n0 +unix +nbd-conn-$id +idle +0$" "$out/conns.txt" &&
	ok "conn ls: text line" || fail "conn ls: $(cat "$out/conns.txt")"

c0=$(counters "$out/c0")
client_read 20 || fail "client read"
d=$(delta "$c0" "$(counters "$out/c1")")
[ "$d" = "0 0 20" ] && ok "live client: 20 reads as idle" ||
	fail "live client before the change: rt be idle moved by $d"

# bad input: one line, exit 1, nothing changed
for bad in "conn ioprio $id rt:8" "conn ioprio $id best weight=5" \
	   "conn ioprio $id be weight=1001" "conn ioprio $((id + 1000)) rt"; do
	# shellcheck disable=SC2086
	if blkctl $bad >"$out/o" 2>"$out/e"; then
		fail "blkctl $bad succeeded"
	elif [ $(wc -l <"$out/e") -ne 1 ] || [ -s "$out/o" ]; then
		fail "blkctl $bad: $(cat "$out/e" "$out/o")"
	fi
done
blkctl --json conn ls >"$out/conns"
py "d['connections'][0]['ioprio'] == 'idle' and d['connections'][0]['weight'] == 0" "$out/conns" &&
	ok "bad conn ioprio lines changed nothing" || fail "after bad input: $(cat "$out/conns")"

blkctl conn ioprio "$id" rt:2 || fail "conn ioprio $id rt:2"
blkctl --json conn ls >"$out/conns"
py "d['connections'][0]['ioprio'] == 'rt:2'" "$out/conns" &&
	ok "conn ls shows rt:2" || fail "conn ls after conn ioprio: $(cat "$out/conns")"
c0=$(counters "$out/c0")
client_read 20 || fail "client read"
d=$(delta "$c0" "$(counters "$out/c1")")
[ "$d" = "20 0 0" ] && ok "live client after conn ioprio rt:2: 20 reads as rt" ||
	fail "live client after the change: rt be idle moved by $d"
blkctl --json export ls >"$out/exp"
py 'd["exports"][0]["ioprio"] == "idle"' "$out/exp" &&
	ok "the export's default stays idle" || fail "export ls: $(cat "$out/exp")"

# ---- bfq: weights ----
# bfqq_orig_weight PID: the queue's base weight (before weight raising)
bfqq_weight() {
	blkctl debug n0 | sed -n "s/^  bfq queue pid=$1 sync class=[0-9]* weight=[0-9]*\/\([0-9]*\) .*/\1/p"
}
blkctl queue n0 scheduler bfq || fail "scheduler bfq"
blkctl export ioprio n0 be:4 weight=300 || fail "export ioprio n0 be:4 weight=300"
blkctl --json conn ls >"$out/conns"
py "d['connections'][0]['ioprio'] == 'be:4' and d['connections'][0]['weight'] == 300" "$out/conns" &&
	ok "export ioprio reached the open connection" || fail "conn ls: $(cat "$out/conns")"
client_read 20 || fail "client read"
w=$(bfqq_weight "$id")
[ "$w" = 300 ] && ok "bfq: connection $id's queue has weight 300" ||
	fail "bfq: connection $id's queue weight '$w'"
blkctl --json debug n0 >"$out/c1"
py 'd["iosched"]["classes"]["be"]["dispatched"] >= 20' "$out/c1" &&
	ok "bfq: counted in class be" || fail "bfq classes: $(cat "$out/c1")"

# a new client: its own queue, of the export's weight
if timeout 60 qemu-io -f raw "${args[@]}" "$URI" >"$out/qio" 2>&1; then
	others=$(blkctl debug n0 | grep '^  bfq queue pid=[0-9]* sync' | grep -v "pid=$id ")
	if echo "$others" | grep -Eq 'class=2 weight=[0-9]+/300 '; then
		ok "bfq: qemu-io's connection got weight 300"
	else
		fail "bfq: qemu-io's queue: $others"
	fi
else
	fail "qemu-io: $(tail -3 "$out/qio")"
fi

blkctl conn ioprio "$id" be:4 weight=700 || fail "conn ioprio $id be:4 weight=700"
client_read 20 || fail "client read"
w=$(bfqq_weight "$id")
[ "$w" = 700 ] && ok "bfq: live change to weight 700 reached the queue" ||
	fail "bfq: connection $id's queue weight '$w' after conn ioprio weight=700"

# ---- config reload: the line is re-applied, and undone on a failure ----
# hup: SIGHUP, then wait for the daemon's verdict on it
hup() {
	local n i
	n=$(grep -c 'SIGHUP: ' "$DAEMON_LOG")
	kill -HUP "$BLKSTACKD_PID"
	for i in $(seq 300); do
		[ "$(grep -c 'SIGHUP: ' "$DAEMON_LOG")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}
conf=$BLKSTACKD_DIR/blkstackd.conf
printf '%s\n' "dev add null n0 size=64M,memory_backed=1" "export nbd n0" \
	"export ioprio n0 be:1 weight=50" "queue n0 nomerges 7" >"$conf"
blkctl --json export ls >"$out/exp0"
hup || fail "no answer to SIGHUP"
blkctl --json export ls >"$out/exp"
if grep -q 'SIGHUP: config refused.*nomerges' "$DAEMON_LOG" && cmp -s "$out/exp0" "$out/exp"; then
	ok "a failed reload put the export's ioprio back"
else
	fail "failed reload: $(cat "$out/exp0" "$out/exp")"
fi
sed -i '$d' "$conf"
hup || fail "no answer to SIGHUP"
blkctl --json export ls >"$out/exp"
blkctl --json conn ls >"$out/conns"
py 'd["exports"][0]["ioprio"] == "be:1" and d["exports"][0]["weight"] == 50' "$out/exp" &&
	py "d['connections'][0]['ioprio'] == 'be:1' and d['connections'][0]['weight'] == 50" "$out/conns" &&
	ok "reload: export ioprio n0 be:1 weight=50 on the export and its connection" ||
	fail "reload: $(cat "$out/exp" "$out/conns")"

echo 0 >&"${CLIENT[1]}" 2>/dev/null
finish
