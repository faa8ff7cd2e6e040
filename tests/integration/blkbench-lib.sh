# Helpers for the integration tests that run blkbench in-process on a
# device (test-blkbench*.sh, test-*-blkbench.sh). Source it first:
#	. "$(dirname "$0")/blkbench-lib.sh"
# Set BB_TMP_IN before sourcing to make the scratch directory on another
# file system (e.g. /var/tmp for O_DIRECT). It sets:
#	$top $BUILD $bb $py	the tree, build dir, blkbench, Debian's python3
#	$tmp			a scratch directory removed on exit
#	$failures		counted by fail
# and defines:
#	ok MSG / fail MSG	report one check (fail shows the run's stderr tail)
#	run NAME ARGS...	blkbench with a hang guard: $tmp/NAME.out/.err, $rc
#	holds EXPR...		Python expressions over the last run's JSON:
#				d the document, js its jobs, j the first job,
#				k the disk object, J jobs by name, o(name) a
#				job's options; $HOLDS_PY adds definitions
#	bb_finish		the closing line and exit status
top=${BLKSTACK_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
bb=$BUILD/tools/blkbench
py=/usr/bin/python3
tmp=$(mktemp -d -p "${BB_TMP_IN:-${TMPDIR:-/tmp}}" blkbench-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

[ -x "$bb" ] || { echo "FAIL: $bb is not built"; exit 1; }
[ -x "$py" ] || { echo "SKIP: the JSON checks need $py"; exit 77; }

failures=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
	[ -n "${name:-}" ] && sed 's/^/     | /' "$tmp/$name.err" | tail -n 5
}

run() {
	name=$1
	shift
	timeout -k 5 60 "$bb" --eta=never "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
}

holds() {
	HOLDS_PY=${HOLDS_PY:-} "$py" - "$tmp/$name.out" "$@" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
js = d["jobs"]
j, k = js[0], d.get("disk")
J = {x["jobname"]: x for x in js}
def o(n): return J[n]["job options"]
exec(os.environ["HOLDS_PY"])
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("     | does not hold:", e)
if bad:
    for n, x in J.items():
        print("     | %s: read %.1f iops, write %.1f iops" %
              (n, x["read"]["iops"], x["write"]["iops"]))
sys.exit(1 if bad else 0)
PY
}

bb_finish() {
	[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
	echo "all checks passed"
}
