# Shared helpers for integration tests that drive blkstackd. Source it:
#
#	. "$(dirname "$0")/lib.sh"
#
# Variables it sets on sourcing:
#   BLKSTACK_TOP   the source tree (from the environment, else ../.. of here)
#   BUILD          the build directory, made absolute (default $BLKSTACK_TOP/build)
#   BLKSTACKD      $BUILD/daemon/blkstackd
#   BLKCTL         $BUILD/tools/blkctl
#   PY             /usr/bin/python3
#
# start_daemon [-d] [-c CONFIG_TEXT] [BLKSTACKD_ARGS...]
#   Starts blkstackd in the background in a private directory and waits
#   (up to $DAEMON_TIMEOUT s, default 30) until it has printed its ready
#   line and its control socket exists.
#   Without -d it runs with --no-default (empty); -d keeps the embedded
#   default (nullb0 + disk0); -c writes CONFIG_TEXT to $BLKSTACKD_DIR/blkstackd.conf
#   and passes --config. Later BLKSTACKD_ARGS override the defaults
#   (e.g. --nbd-listen 127.0.0.1:$port). Returns 1 (with the log on stderr)
#   if the daemon exits or does not get ready. Sets:
#     BLKSTACKD_DIR  private mktemp -d dir, reused by the next start_daemon
#                    (a fresh daemon on the same state), removed on exit
#     STATE_DIR      $BLKSTACKD_DIR/state (--state-dir)
#     CTL_SOCK       $BLKSTACKD_DIR/ctl.sock (--socket; also $BLKSTACK_SOCKET)
#     NBD_SOCK       $BLKSTACKD_DIR/nbd.sock (--nbd-listen unix:$NBD_SOCK)
#     NBD_URI_BASE   "nbd+unix://" ; nbd_uri NAME prints the export's URI
#                    "nbd+unix:///NAME?socket=$NBD_SOCK"
#     PID_FILE       $BLKSTACKD_DIR/blkstackd.pid (--pid-file)
#     DAEMON_LOG     $BLKSTACKD_DIR/blkstackd.log (its stderr; appended)
#     BLKSTACKD_PID  the daemon's pid
#   The daemon is killed (SIGKILL after a SIGTERM grace) by the EXIT trap.
#
#   Sanitizer reports (ASan, LSan, UBSan, TSan in make check-asan/check-tsan)
#   of the daemon and of blkctl go to files $BLKSTACKD_DIR/san/NAME.PID
#   (log_path, after any *SAN_OPTIONS from the environment), not to the
#   log: stop_daemon and the exit path look for them.
#
# blkctl ARGS...      $BLKCTL --socket $CTL_SOCK ARGS, with a time limit
# stop_daemon [SIG]   sends SIG (default TERM), waits up to $DAEMON_TIMEOUT s,
#                     returns the daemon's exit status (124 on time-out), or
#                     1 (a failure counted, the report printed) if a
#                     sanitizer report was written
#   On exit, a sanitizer report not seen by stop_daemon (the daemon stopped
#   by the EXIT trap, a blkctl) is printed and the script exits 1.
# nbd_uri NAME        the NBD URI of export NAME on $NBD_SOCK
# free_tcp_port       prints a TCP port on 127.0.0.1 free right now
# at_exit CMD         run CMD (a string for eval) on exit, before cleanup
# ok MSG / fail MSG   print a result line; fail counts into $failures
# finish              prints "N failed" and exits 0 or 1 accordingly
# need CMD...         exit 77 (skip, with the reason) if a tool is missing

#   PATH           /usr/bin first: nbdsh and Python clients need the system
#                  python3 (python3-libnbd), not one from pyenv or a venv

BLKSTACK_TOP=${BLKSTACK_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$BLKSTACK_TOP/$BUILD ;; esac
BLKSTACKD=$BUILD/daemon/blkstackd
BLKCTL=$BUILD/tools/blkctl
PY=/usr/bin/python3
PATH=/usr/bin:$PATH
DAEMON_TIMEOUT=${DAEMON_TIMEOUT:-30}
BLKSTACKD_DIR=${BLKSTACKD_DIR:-}
BLKSTACKD_PID=
failures=0
_lib_exit_cmds=()

_lib_cleanup() {
	local rc=$? c
	for c in "${_lib_exit_cmds[@]}"; do
		eval "$c" || true
	done
	if [ -n "$BLKSTACKD_PID" ] && _alive "$BLKSTACKD_PID"; then
		kill -TERM "$BLKSTACKD_PID" 2>/dev/null
		for _ in $(seq 50); do
			_alive "$BLKSTACKD_PID" || break
			sleep 0.1
		done
		kill -KILL "$BLKSTACKD_PID" 2>/dev/null
		wait "$BLKSTACKD_PID" 2>/dev/null
	fi
	if [ -n "$BLKSTACKD_DIR" ]; then
		_san_check || echo "FAIL sanitizer report(s) at exit"
		# printed now or by stop_daemon (whose status a script may
		# not look at): the test fails, even one that would skip
		if compgen -G "$BLKSTACKD_DIR/san/*.seen" >/dev/null; then
			case $rc in 0 | 77) rc=1 ;; esac
		fi
		rm -rf "$BLKSTACKD_DIR"
	fi
	exit "$rc"
}
trap _lib_cleanup EXIT

# _san_env NAME: sets _san_vars to the *SAN_OPTIONS assignments (for env)
# that send NAME's sanitizer reports to $BLKSTACKD_DIR/san/NAME.PID,
# keeping what the environment asks for. A report is text in a file of
# its own, so that a run whose exit status nobody looks at (a daemon
# stopped by the EXIT trap, a UBSan report that does not end the
# program) still fails the test.
_san_env() {
	local p=$BLKSTACKD_DIR/san/$1

	mkdir -p "$BLKSTACKD_DIR/san"
	_san_vars=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$p"
		   "UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$p"
		   "TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$p")
}

# _san_check: prints each sanitizer report not printed before (to
# stdout, where the test's log is) and marks it seen; 1 if there was one
_san_check() {
	local f found=0

	for f in "$BLKSTACKD_DIR"/san/*; do
		[ -f "$f" ] || continue
		case $f in *.seen) continue ;; esac
		echo "sanitizer report ${f##*/}:"
		sed 's/^/  | /' "$f"
		mv "$f" "$f.seen"
		found=1
	done
	[ "$found" -eq 0 ]
}

# alive PID: the process runs (a zombie not yet reaped does not count)
_alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

at_exit() {
	_lib_exit_cmds+=("$1")
}

ok() {
	echo "ok   $*"
}

fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

finish() {
	echo "$failures failed"
	[ "$failures" -eq 0 ] && exit 0
	exit 1
}

need() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "$c" ]; then
			echo "SKIP: needs $c (scripts/install-deps.sh installs it)"
			exit 77
		fi
	done
}

nbd_uri() {
	echo "nbd+unix:///$1?socket=$NBD_SOCK"
}

free_tcp_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start_daemon() {
	local defaults=(--no-default) conf=
	while [ $# -gt 0 ]; do
		case $1 in
		-d) defaults=(); shift ;;
		-c) conf=$2; shift 2 ;;
		*) break ;;
		esac
	done
	[ -x "$BLKSTACKD" ] || { echo "FAIL: $BLKSTACKD is not built" >&2; return 1; }
	if [ -z "$BLKSTACKD_DIR" ]; then
		BLKSTACKD_DIR=$(mktemp -d /tmp/blkstackd-test.XXXXXX)
	fi
	STATE_DIR=$BLKSTACKD_DIR/state
	CTL_SOCK=$BLKSTACKD_DIR/ctl.sock
	NBD_SOCK=$BLKSTACKD_DIR/nbd.sock
	NBD_URI_BASE="nbd+unix://"
	PID_FILE=$BLKSTACKD_DIR/blkstackd.pid
	DAEMON_LOG=$BLKSTACKD_DIR/blkstackd.log
	export BLKSTACK_SOCKET=$CTL_SOCK
	mkdir -p "$STATE_DIR"
	if [ -n "$conf" ]; then
		printf '%s\n' "$conf" >"$BLKSTACKD_DIR/blkstackd.conf"
		defaults=(--config "$BLKSTACKD_DIR/blkstackd.conf")
	fi
	# ready = one more "ready" line (a killed daemon leaves its socket)
	local nready
	nready=$(grep -c '^blkstackd: ready' "$DAEMON_LOG" 2>/dev/null)
	_san_env blkstackd
	# env execs the daemon: $! is its pid
	env "${_san_vars[@]}" "$BLKSTACKD" "${defaults[@]}" --state-dir "$STATE_DIR" \
		--socket "$CTL_SOCK" --nbd-listen "unix:$NBD_SOCK" \
		--pid-file "$PID_FILE" --log-level info "$@" \
		2>>"$DAEMON_LOG" &
	BLKSTACKD_PID=$!
	local i
	for i in $(seq $((DAEMON_TIMEOUT * 10))); do
		if [ -S "$CTL_SOCK" ] && [ "$(grep -c '^blkstackd: ready' "$DAEMON_LOG")" -gt "${nready:-0}" ]; then
			return 0
		fi
		if ! _alive "$BLKSTACKD_PID"; then
			wait "$BLKSTACKD_PID"
			echo "blkstackd exited ($?) before it was ready:" >&2
			sed 's/^/  | /' "$DAEMON_LOG" >&2
			BLKSTACKD_PID=
			return 1
		fi
		sleep 0.1
	done
	echo "blkstackd not ready after ${DAEMON_TIMEOUT}s:" >&2
	sed 's/^/  | /' "$DAEMON_LOG" >&2
	return 1
}

blkctl() {
	local _san_vars=()

	[ -z "$BLKSTACKD_DIR" ] || _san_env blkctl
	timeout -k 5 "$DAEMON_TIMEOUT" env "${_san_vars[@]}" "$BLKCTL" \
		--socket "$CTL_SOCK" "$@"
}

stop_daemon() {
	local sig=${1:-TERM} i rc
	[ -n "$BLKSTACKD_PID" ] || return 0
	kill -"$sig" "$BLKSTACKD_PID" 2>/dev/null
	for i in $(seq $((DAEMON_TIMEOUT * 10))); do
		if ! _alive "$BLKSTACKD_PID"; then
			wait "$BLKSTACKD_PID"
			rc=$?
			BLKSTACKD_PID=
			if ! _san_check; then
				fail "sanitizer report(s) above"
				return 1
			fi
			return $rc
		fi
		sleep 0.1
	done
	kill -KILL "$BLKSTACKD_PID" 2>/dev/null
	wait "$BLKSTACKD_PID" 2>/dev/null
	BLKSTACKD_PID=
	_san_check || fail "sanitizer report(s) above"
	return 124
}
