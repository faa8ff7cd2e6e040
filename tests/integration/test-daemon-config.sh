#!/usr/bin/env bash
# blkstackd's config file: a start from it, the pid file and its lock, bad
# configs refused at start with FILE:LINE, and SIGHUP reloads that
# reconcile (add what is new, remove what is gone, replace what changed,
# re-apply attributes, leave unchanged devices and their data alone),
# while a bad reload keeps the running state, undoing what it had begun.
set -u
. "$(dirname "$0")/lib.sh"
need "$PY" nbdsh
[ -x "$BLKCTL" ] || { echo "FAIL: $BLKCTL is not built"; exit 1; }
out=$(mktemp -d)
at_exit "rm -rf '$out'"

snapshot() {
	{ blkctl dev ls; blkctl export ls; blkctl queue nullb0 max_sectors_kb; } 2>&1
}

# refused CONFIG WANT: a daemon started on CONFIG exits 1 naming WANT
refused() {
	local conf=$out/bad.conf want=$1
	printf '%s\n' "$2" >"$conf"
	timeout 30 "$BLKSTACKD" --config "$conf" --socket "$out/bad.sock" \
		--nbd-listen "unix:$out/bad-nbd.sock" --state-dir "$out/bad-state" \
		--pid-file "$out/bad.pid" >"$out/bad.out" 2>"$out/bad.err"
	local rc=$?
	if [ $rc -eq 1 ] && grep -qF -- "$conf:$want" "$out/bad.err" &&
	   [ ! -e "$out/bad.sock" ] && [ ! -e "$out/bad.pid" ]; then
		ok "bad config refused: $(grep -F "$conf:" "$out/bad.err" | sed 's/.*refused: //')"
	else
		fail "bad config (exit $rc, wanted '$conf:$want')"; cat "$out/bad.err"
	fi
}

# 0. the command line
"$BLKSTACKD" --help >"$out/help" 2>&1; rc1=$?
"$BLKSTACKD" --bogus >/dev/null 2>&1; rc2=$?
"$BLKSTACKD" --log-level loud >/dev/null 2>"$out/e"; rc3=$?
"$BLKSTACKD" extra >/dev/null 2>&1; rc4=$?
if [ $rc1 -eq 0 ] && grep -q 'usage: blkstackd \[--config FILE\]' "$out/help" &&
   grep -q '127.0.0.1:10809' "$out/help" && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] &&
   grep -q -- '--log-level=loud: valid values are error, warn, notice, info, debug' "$out/e" &&
   [ $rc4 -eq 2 ]; then
	ok "command line: --help exits 0, bad options exit 2"
else
	fail "command line: exits $rc1 $rc2 $rc3 $rc4"; cat "$out/help" "$out/e"
fi

# 1. bad configs are refused whole at start, with FILE:LINE and the error
refused "2: unknown command 'dve'" "dev add null a size=1M
dve add null b size=1M"
refused "3: null: unknown parameter 'bogus'" "# a good line first, undone again
dev add null a size=1M
dev add null b size=1M bogus=1"
refused "2: 'dev del' does not belong in a config file" "dev add null a size=1M
dev del a"
refused "3: device 'a' is added twice" "dev add null a size=1M

dev add null a size=2M"
refused "1: usage: export nbd NAME [name=EXPORT] [readonly]" "export nbd"
refused "2: no queue attribute 'nosuch'" "dev add null a size=1M
queue a nosuch 1"
if timeout 10 "$BLKSTACKD" --config "$out/nosuch.conf" --socket "$out/x.sock" \
	--nbd-listen none --pid-file "$out/x.pid" --state-dir "$out/x" 2>"$out/e"; then
	fail "a missing config file was accepted"
else
	grep -q "nosuch.conf: No such file" "$out/e" && ok "missing config file refused" ||
		{ fail "missing config file message"; cat "$out/e"; }
fi

# the example in contrib/ is a valid config (its path moved here)
sed "s|/var/lib/blkstack|$out/example|" "$BLKSTACK_TOP/contrib/blkstackd.conf" >"$out/example.conf"
mkdir -p "$out/example"
timeout -k 5 30 "$BLKSTACKD" --config "$out/example.conf" --socket "$out/ex.sock" \
	--nbd-listen "unix:$out/ex-nbd.sock" --pid-file "$out/ex.pid" \
	--state-dir "$out/example" 2>"$out/ex.log" &
ex=$!
for _ in $(seq 300); do [ -S "$out/ex.sock" ] && break; sleep 0.1; done
if "$BLKCTL" --socket "$out/ex.sock" dev ls >"$out/o" 2>&1 &&
   grep -q '^nullb0 .* 1G .*nullb0$' "$out/o" && grep -q '^disk0 .* 1G .*disk0$' "$out/o"; then
	ok "contrib/blkstackd.conf starts nullb0 and disk0"
else
	fail "contrib/blkstackd.conf"; cat "$out/o" "$out/ex.log"
fi
kill -TERM $ex
wait $ex || fail "the example daemon's stop: exit $?"

# 2. a start from a config file
conf1='# two devices, one exported read-only under another name
dev add null nullb0 size=64M memory_backed=1
dev add null nullb1 size=32M memory_backed=1
queue nullb0 max_sectors_kb 128   # comments after a command too
export nbd nullb0
export nbd nullb1 name=second readonly'
start_daemon -c "$conf1" || exit 1
conf=$BLKSTACKD_DIR/blkstackd.conf
if blkctl dev ls | grep -q '^nullb0 .*64M' && blkctl dev ls | grep -q '^nullb1 .*32M' &&
   [ "$(blkctl queue nullb0 max_sectors_kb)" = 128 ] &&
   blkctl export ls | grep -Eq '^second +nullb1 +ro'; then
	ok "config start: devices, queue attribute, exports"
else
	fail "config start"; blkctl dev ls; blkctl export ls
fi

# 3. the pid file names the daemon and keeps a second one out
if [ "$(cat "$PID_FILE")" = "$BLKSTACKD_PID" ]; then
	ok "pid file holds $BLKSTACKD_PID"
else
	fail "pid file: '$(cat "$PID_FILE")' vs $BLKSTACKD_PID"
fi
timeout 20 "$BLKSTACKD" --no-default --pid-file "$PID_FILE" --socket "$out/2.sock" \
	--nbd-listen none --state-dir "$out/2" 2>"$out/e"
rc=$?
if [ $rc -eq 1 ] && grep -q "already runs (pid $BLKSTACKD_PID)" "$out/e" &&
   [ "$(cat "$PID_FILE")" = "$BLKSTACKD_PID" ]; then
	ok "second daemon on the pid file refused"
else
	fail "second daemon: exit $rc"; cat "$out/e"
fi
timeout 20 "$BLKSTACKD" --no-default --pid-file "$out/3.pid" --socket "$CTL_SOCK" \
	--nbd-listen none --state-dir "$out/3" 2>"$out/e"
rc=$?
if [ $rc -eq 1 ] && grep -q "another blkstackd answers there" "$out/e" && [ -S "$CTL_SOCK" ]; then
	ok "second daemon on the control socket refused"
else
	fail "second daemon on the socket: exit $rc"; cat "$out/e"
fi

# data on nullb0 must survive reloads that leave nullb0 alone
PATH=/usr/bin:$PATH timeout 20 nbdsh -u "$(nbd_uri nullb0)" \
	-c 'h.pwrite(b"\xa5" * 4096, 8192)' || fail "write to nullb0"

# hup PATTERN: SIGHUP, then wait until one more log line matches PATTERN
hup() {
	local n i
	n=$(grep -c -- "$1" "$DAEMON_LOG")
	kill -HUP "$BLKSTACKD_PID"
	for i in $(seq 200); do
		[ "$(grep -c -- "$1" "$DAEMON_LOG")" -gt "$n" ] && return 0
		sleep 0.1
	done
	echo "no '$1' in the log after SIGHUP" >&2
	return 1
}

# 4. reload: nullb1 and its export go, nullb2 comes, the attribute changes
cat >"$conf" <<EOF
dev add null nullb0 size=64M memory_backed=1
dev add null nullb2 size=16M
queue nullb0 max_sectors_kb 64
export nbd nullb0
export nbd nullb2
EOF
hup "reloaded" || fail "reload 1"
if blkctl dev ls | grep -q '^nullb2 .*16M' && ! blkctl dev ls | grep -q '^nullb1 ' &&
   [ "$(blkctl queue nullb0 max_sectors_kb)" = 64 ] &&
   blkctl export ls | grep -q '^nullb2 ' && ! blkctl export ls | grep -q '^second '; then
	ok "SIGHUP: nullb2 added and exported, nullb1 and 'second' removed, max_sectors_kb 64"
else
	fail "SIGHUP reload"; blkctl dev ls; blkctl export ls
fi
if PATH=/usr/bin:$PATH timeout 20 nbdsh -u "$(nbd_uri nullb0)" \
	-c 'assert h.pread(4096, 8192) == b"\xa5" * 4096'; then
	ok "nullb0 was left alone: its data is still there"
else
	fail "nullb0's data did not survive the reload"
fi

# 5. a changed definition replaces the device and re-makes its export
sed -i 's/nullb2 size=16M/nullb2 size=32M/' "$conf"
hup "reloaded" || fail "reload 2"
if blkctl dev ls | grep -q '^nullb2 .*32M .*nullb2$'; then
	ok "SIGHUP: nullb2 re-made with size=32M, still exported"
else
	fail "changed definition"; blkctl dev ls
fi

# 6. bad reloads keep the running state: a bad line found before anything
# runs, and one that fails after earlier lines have changed things
before=$(snapshot)
cp "$conf" "$out/good.conf"
printf 'dev add null nullb3 size=1M\nqueue nullb0 nosuch 1\n' >>"$conf"
hup "config refused" || fail "bad reload 1"
grep -q "config refused, running state kept: $conf:7: no queue attribute 'nosuch'" "$DAEMON_LOG" &&
	ok "bad reload: FILE:LINE and the error logged" ||
	{ fail "bad reload message"; tail -3 "$DAEMON_LOG"; }
cp "$out/good.conf" "$conf"
printf 'queue nullb0 max_sectors_kb 32\ndev add null nullb3 size=1M\nexport nbd nullb3\ndev add null nullb4 size=1M,bogus=1\n' >>"$conf"
hup "config refused" || fail "bad reload 2"
after=$(snapshot)
if [ "$before" = "$after" ] && grep -q "$conf:9: null: unknown parameter 'bogus'" "$DAEMON_LOG" &&
   grep -q 'config: undone: queue nullb0 max_sectors_kb 64$' "$DAEMON_LOG" &&
   grep -q 'config: undone: dev del nullb3$' "$DAEMON_LOG" &&
   grep -q 'config: undone: unexport nullb3$' "$DAEMON_LOG"; then
	ok "bad reload after changes: undone (max_sectors_kb 64, no nullb3)"
else
	fail "bad reload changed the state"; diff <(echo "$before") <(echo "$after")
fi

# 7. a device made by blkctl is not the config's: reload refuses to take it
blkctl dev add null rt0 size=1M || fail "dev add rt0"
cp "$out/good.conf" "$conf"
echo "dev add null rt0 size=1M" >>"$conf"
hup "config refused" || fail "bad reload 3"
grep -q "'rt0' exists and was made by blkctl" "$DAEMON_LOG" &&
	ok "reload refuses a device made at run time" ||
	{ fail "runtime device conflict"; tail -3 "$DAEMON_LOG"; }
cp "$out/good.conf" "$conf"
hup "reloaded" || fail "reload 4"
blkctl dev ls | grep -q '^rt0 ' && ok "reload leaves the run-time device rt0 alone" ||
	fail "rt0 was removed by a reload"

# 8. the file is the desired state: a config device deleted at run time
# comes back on the next reload, exported again
blkctl dev del nullb2 || fail "dev del nullb2"
hup "reloaded" || fail "reload 5"
blkctl dev ls | grep -q '^nullb2 .*32M .*nullb2$' &&
	ok "reload re-made nullb2 after a run-time dev del" ||
	{ fail "nullb2 not re-made"; blkctl dev ls; }

stop_daemon
rc=$?
[ $rc -eq 0 ] && [ ! -e "$PID_FILE" ] && ok "stop: exit 0, pid file removed" ||
	{ fail "stop: exit $rc"; tail "$DAEMON_LOG"; }

# 9. after a crash (SIGKILL) the stale socket and pid file do not keep a
# new daemon out
start_daemon --no-default || exit 1
stop_daemon KILL
if [ -S "$CTL_SOCK" ] && [ -e "$PID_FILE" ] && start_daemon --no-default &&
   blkctl dev ls >/dev/null; then
	ok "a new daemon replaces a killed one's stale socket and pid file"
else
	fail "restart after SIGKILL"; tail -3 "$DAEMON_LOG"
fi
stop_daemon || fail "stop after the restart"
finish
