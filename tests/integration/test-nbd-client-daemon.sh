#!/usr/bin/env bash
# The NBD client driver inside blkstackd, stacked: `dev add nbd r0 uri=...`
# onto a real nbdkit memory server, `export nbd r0`, then real clients
# (nbdcopy, nbdinfo) going NBD -> blkstackd's export -> the block layer ->
# the NBD client -> nbdkit, with the data checked on the backend directly;
# bad `dev add nbd` commands refused with their message and nothing made;
# the backend killed: client I/O fails (no hang), and works again once the
# backend is back. About 15 s.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY" nbdkit nbdcopy nbdinfo
[ -x "$BLKCTL" ] || { echo "FAIL: $BLKCTL is not built"; exit 1; }
out=$(mktemp -d)
at_exit "rm -rf '$out'"
backend=$out/backend.sock
buri="nbd+unix:///?socket=$backend"
kpid=
at_exit '[ -n "$kpid" ] && { kill -9 $kpid; wait $kpid; } 2>/dev/null'

# nbdkit_start: the backend on $backend, ready when nbdinfo can read it
nbdkit_start() {
	rm -f "$backend"
	nbdkit -f --exit-with-parent -U "$backend" memory 64M 2>>"$out/nbdkit.log" &
	kpid=$!
	for _ in $(seq 100); do
		timeout 5 nbdinfo --size "$buri" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "FAIL: nbdkit did not start"; cat "$out/nbdkit.log"
	exit 1
}

run() {
	blkctl "$@" >"$out/o" 2>"$out/e"
	rc=$?
}

nbdkit_start
start_daemon || exit 1

# 1. dev add nbd: the device takes the export's size
run dev add nbd r0 "uri=$buri,reconnect_delay_ms=50,max_reconnect_delay_ms=200"
if [ $rc -eq 0 ] && blkctl dev ls | grep -q '^r0 ' &&
   [ "$(blkctl queue r0 logical_block_size)" = 512 ]; then
	ok "dev add nbd r0 uri=$buri"
else
	fail "dev add nbd: exit $rc: $(cat "$out/e")"
fi

# 2. bad parameters: one line naming what is wrong, nothing made
bad() {
	local want=$1
	shift
	run "$@"
	if [ $rc -ne 0 ] && grep -qF "$want" "$out/e" && ! blkctl dev ls | grep -q '^bad '; then
		ok "refused: $* -> $(head -n 1 "$out/e")"
	else
		fail "$*: exit $rc, '$(cat "$out/e")' (wanted '$want')"
	fi
}
bad "unknown parameter 'colour'" dev add nbd bad "uri=$buri,colour=blue"
bad "uri= is required" dev add nbd bad conns=1
bad "$out/none.sock" dev add nbd bad "uri=nbd+unix:///?socket=$out/none.sock"

# 3. stacked: NBD client -> blkstackd export -> block layer -> NBD -> nbdkit
run export nbd r0
[ $rc -eq 0 ] || fail "export nbd r0: $(cat "$out/e")"
head -c 8M /dev/urandom >"$out/data"
if timeout 30 nbdcopy "$out/data" "$(nbd_uri r0)" 2>"$out/copy.err" &&
   timeout 30 nbdcopy "$buri" "$out/back" 2>>"$out/copy.err" &&
   cmp -s "$out/data" <(head -c 8M "$out/back"); then
	ok "8 MiB through blkstackd's export onto nbdkit, read back from nbdkit"
else
	fail "stacked copy"; cat "$out/copy.err"
fi
if timeout 30 nbdcopy "$(nbd_uri r0)" "$out/again" 2>"$out/copy.err" &&
   cmp -s "$out/data" <(head -c 8M "$out/again"); then
	ok "and read back through the whole stack"
else
	fail "stacked read"; cat "$out/copy.err"
fi

# 4. the backend killed: clients get an error, not a hang
{ kill -9 "$kpid"; wait "$kpid"; } 2>/dev/null
kpid=
start=$(date +%s)
if timeout 20 nbdcopy "$(nbd_uri r0)" "$out/fail" 2>"$out/copy.err"; then
	fail "a read through a dead backend succeeded"
elif [ $(( $(date +%s) - start )) -lt 10 ]; then
	ok "backend gone: the read fails in $(( $(date +%s) - start )) s: $(head -n 1 "$out/copy.err" | head -c 100)"
else
	fail "backend gone: the read took $(( $(date +%s) - start )) s"
fi

# 5. back (a fresh, empty memory disk): I/O works again after reconnecting
nbdkit_start
okio=
for _ in $(seq 50); do
	if timeout 20 nbdcopy "$out/data" "$(nbd_uri r0)" 2>"$out/copy.err"; then
		okio=1
		break
	fi
	sleep 0.2
done
if [ -n "$okio" ] && timeout 30 nbdcopy "$buri" "$out/back2" &&
   cmp -s "$out/data" <(head -c 8M "$out/back2"); then
	ok "backend back: 8 MiB written through the stack again"
else
	fail "no I/O after the backend came back"; cat "$out/copy.err"
fi

run unexport r0
run dev del r0
[ $rc -eq 0 ] && ok "dev del r0" || fail "dev del r0: $(cat "$out/e")"
# (under ASan a leak or a bad access shows here as the exit status)
stop_daemon
rc=$?
[ $rc -eq 0 ] && ok "blkstackd exits cleanly" ||
	{ fail "blkstackd exited $rc"; tail -n 30 "$DAEMON_LOG"; }
finish
