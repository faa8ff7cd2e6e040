#!/usr/bin/env bash
# blkstackd with no config: the embedded default. nullb0 (null, 1 GiB,
# memory backed) and disk0 (uring, 1 GiB sparse file in --state-dir), both
# exported over NBD under their names. Checked with nbdinfo on a TCP port
# of 127.0.0.1 picked at run time (--nbd-listen 127.0.0.1:0, the port read
# from the ready line), I/O through nbdsh, and -- in a private network
# namespace, so no other test's port is touched -- the built-in default
# address 127.0.0.1:10809 when --nbd-listen is not given.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY" nbdinfo nbdsh
out=$(mktemp -d)
at_exit "rm -rf '$out'"
GiB=1073741824

start_daemon -d --nbd-listen 127.0.0.1:0 || exit 1
ready=$(grep 'blkstackd: ready' "$DAEMON_LOG")
port=$(echo "$ready" | sed -n 's/.*nbd 127\.0\.0\.1:\([0-9]*\),.*/\1/p')
if [ -n "$port" ] && echo "$ready" | grep -q ', 2 devices$'; then
	ok "ready line: $ready"
else
	fail "ready line: '$ready'"; cat "$DAEMON_LOG"
	exit 1
fi

if timeout 30 nbdinfo --list --json "nbd://127.0.0.1:$port" >"$out/list.json" 2>"$out/e" &&
   "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sizes = {e["export-name"]: e["export-size"] for e in d["exports"]}
sys.exit(0 if sizes == {"nullb0": int(sys.argv[2]), "disk0": int(sys.argv[2])} else 1)' \
	"$out/list.json" $GiB; then
	ok "nbdinfo --list: nullb0 and disk0, 1 GiB each, on 127.0.0.1:$port"
else
	fail "nbdinfo --list"; cat "$out/list.json" "$out/e"
fi

if blkctl dev ls | grep -Eq '^nullb0 +252:[0-9]+ +1G +0 +null .* nullb0$' &&
   blkctl dev ls | grep -Eq '^disk0 +252:[0-9]+ +1G +0 +uring .* disk0$'; then
	ok "dev ls: nullb0 (null) and disk0 (uring), exported"
else
	fail "dev ls"; blkctl dev ls
fi

img=$STATE_DIR/disk0.img
if [ -f "$img" ] && [ "$(stat -c %s "$img")" -eq $GiB ] &&
   [ "$(du -k "$img" | cut -f1)" -lt 65536 ]; then
	ok "disk0 is a sparse 1 GiB file in the state directory"
else
	fail "disk0.img: $(ls -ls "$img" 2>&1)"
fi

for dev in nullb0 disk0; do
	if timeout 30 nbdsh -u "nbd://127.0.0.1:$port/$dev" -c '
buf = bytes(range(256)) * 256
h.pwrite(buf, (1 << 30) - len(buf))
h.flush()
assert h.pread(len(buf), (1 << 30) - len(buf)) == buf
assert h.pread(4096, 0) == bytes(4096)
' 2>"$out/e"; then
		ok "$dev: write at the end, flush, read back over TCP"
	else
		fail "$dev I/O"; cat "$out/e"
	fi
done

stop_daemon
rc=$?
[ $rc -eq 0 ] && ok "stop: exit 0" || { fail "stop: exit $rc"; tail "$DAEMON_LOG"; }

# the data written to disk0 is in its file after the stop
if "$PY" -c 'import sys
f = open(sys.argv[1], "rb")
f.seek((1 << 30) - 65536)
sys.exit(0 if f.read() == bytes(range(256)) * 256 else 1)' "$img"; then
	ok "disk0.img holds the write after the stop"
else
	fail "disk0.img lost the write"
fi

# the built-in address, in a network namespace of our own
if ! unshare -rn true 2>/dev/null; then
	echo "skip the 127.0.0.1:10809 default: no network namespaces here"
	finish
fi
ns=$out/ns
mkdir -p "$ns"
timeout -k 5 60 unshare -rn bash -c '
set -u
ip link set lo up || exit 3
"$1" --state-dir "$2/state" --socket "$2/ctl.sock" --pid-file "$2/pid" \
	2>"$2/log" &
pid=$!
trap "kill $pid 2>/dev/null" EXIT
for _ in $(seq 300); do [ -S "$2/ctl.sock" ] && break; sleep 0.1; done
nbdinfo --list nbd://127.0.0.1:10809 >"$2/list" 2>&1 || exit 4
kill -TERM $pid
wait $pid
' _ "$BLKSTACKD" "$ns"
rc=$?
if [ $rc -eq 0 ] && grep -q 'export="nullb0"' "$ns/list" &&
   grep -q 'export="disk0"' "$ns/list" &&
   grep -q 'ready: .*nbd 127.0.0.1:10809, 2 devices' "$ns/log"; then
	ok "no --nbd-listen: the default serves on 127.0.0.1:10809"
else
	fail "default address (exit $rc)"; cat "$ns/log" "$ns/list" 2>/dev/null
fi
finish
