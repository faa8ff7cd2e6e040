#!/usr/bin/env bash
# The NBD server through blkstackd, driven by real clients: nbdinfo
# (exports, size, block sizes, flags, map), qemu-io (patterns written and
# verified with -P), qemu-img convert + compare, nbdcopy both ways, and
# fio --ioengine=nbd with crc32c verification, on a unix socket in a
# private directory.
set -u
. "$(dirname "$0")/lib.sh"
need nbdinfo nbdcopy qemu-io qemu-img fio "$PY"
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "SKIP: fio has no nbd engine"; exit 77; }

start_daemon -c "dev add null nullb0 size=64M,memory_backed=1,bs=4096
dev add null nullb1 size=64M,memory_backed=1
export nbd nullb0
export nbd nullb0 name=ro readonly
export nbd nullb1 name=copy" || exit 1

U0=$(nbd_uri nullb0)
URO=$(nbd_uri ro)
UC=$(nbd_uri copy)
tmp=$BLKSTACKD_DIR/data
mkdir -p "$tmp"

# ---- nbdinfo ----
if names=$(timeout 30 nbdinfo --list --json "$NBD_URI_BASE/?socket=$NBD_SOCK" |
	"$PY" -c 'import json,sys; print(" ".join(e["export-name"] for e in json.load(sys.stdin)["exports"]))') &&
	[ "$names" = "nullb0 ro copy" ]; then
	ok "nbdinfo --list: $names"
else
	fail "nbdinfo --list: '${names:-}'"
fi
info=$(timeout 30 nbdinfo --json "$U0") || fail "nbdinfo $U0"
check_info() {
	"$PY" -c '
import json, sys
want = json.loads(sys.argv[1])
e = json.load(sys.stdin)["exports"][0]
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
if bad:
    print(bad)
    sys.exit(1)
' "$1"
}
if echo "$info" | check_info '{"export-size": 67108864, "block_size_minimum": 4096,
	"block_size_preferred": 4096, "block_size_maximum": 33554432,
	"is_read_only": false, "can_flush": true, "can_fua": true, "can_trim": true,
	"can_zero": true, "can_fast_zero": true, "can_multi_conn": true,
	"can_cache": true, "can_df": true}'; then
	ok "nbdinfo: size, block sizes, flags"
else
	fail "nbdinfo: $info"
fi
if timeout 30 nbdinfo --json "$URO" | check_info '{"is_read_only": true}'; then
	ok "nbdinfo: read-only export"
else
	fail "nbdinfo: read-only export"
fi

# ---- qemu-io: patterns ----
qio() {
	local out
	out=$(timeout 60 qemu-io -f raw "$@" 2>&1)
	local rc=$?
	echo "$out"
	[ $rc -eq 0 ] && ! grep -qiE "fail|error|mismatch" <<<"$out"
}
if qio -c "write -P 0x5a 0 1M" -c "write -f -P 0xa5 8M 64k" \
	-c "read -P 0x5a 0 1M" -c "read -P 0xa5 8M 64k" \
	-c "read -P 0 32M 1M" "$U0" >"$tmp/qio.log"; then
	ok "qemu-io: write, FUA write, read -P"
else
	fail "qemu-io: $(cat "$tmp/qio.log")"
fi
if qio -c "read -P 0x55 0 4k" "$U0" >/dev/null; then
	fail "qemu-io: a wrong pattern verified"
else
	ok "qemu-io: a wrong pattern is caught"
fi
if qio -c "write -z 0 256k" -c "discard 512k 512k" -c "read -P 0 0 256k" \
	-c "read -P 0 512k 512k" -c "read -P 0x5a 256k 256k" "$U0" >"$tmp/qio.log"; then
	ok "qemu-io: write zeroes and discard"
else
	fail "qemu-io: zero/discard: $(cat "$tmp/qio.log")"
fi
if qio -c "write -P 1 0 4k" "$URO" >/dev/null; then
	fail "qemu-io: write to a read-only export succeeded"
else
	ok "qemu-io: read-only export refuses writes"
fi
if map=$(timeout 30 nbdinfo --map --totals "$U0") &&
	grep -q "hole,zero" <<<"$map" && grep -q " data" <<<"$map"; then
	ok "nbdinfo --map: $(echo "$map" | tr '\n' ';')"
else
	fail "nbdinfo --map: ${map:-}"
fi

# ---- qemu-img convert + compare ----
head -c $((16 << 20)) /dev/urandom >"$tmp/img"
if timeout 60 qemu-img convert -n -f raw -O raw "$tmp/img" "$UC" &&
	timeout 60 qemu-img compare -f raw -F raw "$tmp/img" "$UC" >"$tmp/cmp.log" 2>&1; then
	ok "qemu-img convert + compare"
else
	fail "qemu-img convert/compare: $(cat "$tmp/cmp.log")"
fi
# compare notices a difference
printf 'x' | dd of="$tmp/img" bs=1 seek=12345 conv=notrunc 2>/dev/null
if timeout 60 qemu-img compare -f raw -F raw "$tmp/img" "$UC" >/dev/null 2>&1; then
	fail "qemu-img compare missed a changed byte"
else
	ok "qemu-img compare sees a changed byte"
fi

# ---- nbdcopy both ways ----
head -c $((32 << 20)) /dev/urandom >"$tmp/in"
if timeout 60 nbdcopy "$tmp/in" "$UC" && timeout 60 nbdcopy "$UC" "$tmp/out" &&
	cmp -n $((32 << 20)) "$tmp/in" "$tmp/out"; then
	ok "nbdcopy file -> export -> file"
else
	fail "nbdcopy round trip"
fi
if timeout 60 nbdcopy --connections=4 --requests=16 "$UC" "$U0" &&
	timeout 60 nbdcopy "$U0" "$tmp/out2" && cmp -n $((32 << 20)) "$tmp/in" "$tmp/out2"; then
	ok "nbdcopy export -> export, 4 connections"
else
	fail "nbdcopy export -> export"
fi

# ---- fio with verification ----
for rw in randwrite write; do
	if timeout 120 fio --name=v --ioengine=nbd --uri="$UC" --rw=$rw \
		--bs=4k --iodepth=32 --size=16M --verify=crc32c --do_verify=1 \
		--verify_state_save=0 \
		--output="$tmp/fio.log" && grep -q "err= 0" "$tmp/fio.log"; then
		ok "fio --ioengine=nbd --rw=$rw --verify=crc32c"
	else
		fail "fio $rw: $(tail -5 "$tmp/fio.log")"
	fi
done
if timeout 120 fio --name=v --ioengine=nbd --uri="$UC" --rw=randrw --bs=64k \
	--iodepth=8 --numjobs=2 --size=8M --offset_increment=16M \
	--verify=crc32c --verify_state_save=0 --output="$tmp/fio2.log" &&
	grep -q "err= 0" "$tmp/fio2.log"; then
	ok "fio: 2 jobs (2 connections), 64k randrw, verified"
else
	fail "fio 2 jobs: $(tail -5 "$tmp/fio2.log")"
fi

if grep -q "nbd: .*closing" "$DAEMON_LOG"; then
	fail "the server closed a connection of a well-behaved client: $(grep 'closing' "$DAEMON_LOG" | head -3)"
else
	ok "no connection was closed for a protocol violation"
fi
# a clean stop with exports and connections gone (stop_daemon fails on
# a sanitizer report too)
if stop_daemon; then
	ok "blkstackd stopped cleanly"
else
	fail "blkstackd stop: $(grep -E 'ERROR|error|WARNING' "$DAEMON_LOG" | head -5)"
fi
finish
