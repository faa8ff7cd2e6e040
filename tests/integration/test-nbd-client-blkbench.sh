#!/usr/bin/env bash
# blkbench through the NBD client driver (drivers/nbd.c) against real
# servers: --filename=nbd+unix:///?socket=... on nbdkit memory with
# --verify=crc32c (random writes read back and checked), the same over
# loopback TCP (nbd://127.0.0.1:PORT/, a port found at run time), qemu-nbd
# with multi-conn, verify failing on a server that drops data (nbdkit
# null), and an unreachable socket refused with a message. About 15 s.
set -u
. "$(dirname "$0")/blkbench-lib.sh"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

for t in nbdkit qemu-nbd; do
	command -v "$t" >/dev/null || { echo "SKIP: needs $t (scripts/install-deps.sh)"; exit 77; }
done

# serve NAME CHECK CMD...: start a server in the background, wait (10 s at
# most) until CHECK (a command) succeeds.
serve() {
	local sname=$1 check=$2
	shift 2
	"$@" >"$tmp/$sname.srv.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		eval "$check" && return 0
		sleep 0.1
	done
	echo "FAIL: $sname did not start"; cat "$tmp/$sname.srv.log"
	exit 1
}

free_port() {
	"$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 1. random writes verified over a unix socket
serve mem "[ -S $tmp/mem.sock ]" nbdkit -f --exit-with-parent -U "$tmp/mem.sock" memory 128M
run unix --name=v --rw=randwrite --bs=4k --iodepth=16 --size=32M \
	--verify=crc32c --output-format=json \
	--filename="nbd+unix:///?socket=$tmp/mem.sock"
if [ $rc -eq 0 ] && holds 'j["write"]["total_ios"] == 8192' \
	'k["name"].startswith("nbd")' 'j["write"]["iops"] > 0'; then
	ok "nbd+unix: 32 MiB of verified random writes"
else
	fail "nbd+unix verify (exit $rc)"
fi

# 1b. the driver:params form, for the driver's own parameters
run params --name=v --rw=randwrite --bs=8k --iodepth=8 --size=8M \
	--verify=crc32c --output-format=json \
	--filename="nbd:uri=nbd+unix:///?socket=$tmp/mem.sock,conns=1,depth=8"
if [ $rc -eq 0 ] && holds 'j["write"]["total_ios"] == 1024'; then
	ok "nbd:uri=...,conns=1,depth=8: verified random writes"
else
	fail "nbd:uri=... form (exit $rc)"
fi

# 2. the same over loopback TCP, larger blocks, mixed reads and writes
port=$(free_port)
serve tcp "(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null" \
	nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$port" memory 128M
run tcp --name=v --rw=randrw --bs=64k --iodepth=8 --size=64M \
	--verify=crc32c --output-format=json --filename="nbd://127.0.0.1:$port/"
if [ $rc -eq 0 ] && holds 'j["write"]["total_ios"] > 0' \
	'j["read"]["total_ios"] > 0'; then
	ok "nbd://127.0.0.1:$port/: verified 64k random read/write"
else
	fail "nbd TCP verify (exit $rc)"
fi

# 3. qemu-nbd with multi-conn: one hw queue per connection
truncate -s 64M "$tmp/disk.img"
serve qemu "[ -S $tmp/q.sock ]" qemu-nbd -t --shared=4 -f raw -k "$tmp/q.sock" "$tmp/disk.img"
run qemu --name=v --rw=randwrite --bs=16k --iodepth=16 --size=16M \
	--verify=crc32c --output-format=json \
	--filename="nbd+unix:///?socket=$tmp/q.sock"
if [ $rc -eq 0 ] && holds 'j["write"]["total_ios"] == 1024'; then
	ok "qemu-nbd --shared=4: verified random writes"
else
	fail "qemu-nbd verify (exit $rc)"
fi

# 4. verify is real over NBD: a server that keeps nothing fails it
serve null "[ -S $tmp/null.sock ]" nbdkit -f --exit-with-parent -U "$tmp/null.sock" null 64M
run null --name=v --rw=randwrite --bs=4k --iodepth=4 --size=1M \
	--verify=crc32c --filename="nbd+unix:///?socket=$tmp/null.sock"
if [ $rc -ne 0 ] && grep -qi 'verify' "$tmp/null.out" "$tmp/null.err"; then
	ok "verify fails on nbdkit null (data dropped)"
else
	fail "verify passed on a server that drops data (exit $rc)"
fi

# 5. nobody listening: a clear error, not a hang
run none --rw=read --size=1M --filename="nbd+unix:///?socket=$tmp/none.sock"
if [ $rc -ne 0 ] && grep -q "nbd: nbd+unix:///?socket=$tmp/none.sock" "$tmp/none.err"; then
	ok "unreachable socket refused: $(head -n 1 "$tmp/none.err")"
else
	fail "unreachable socket (exit $rc)"
fi

bb_finish
