#!/usr/bin/env bash
# Run every unit test program and integration script; each gets a time
# limit. Exit codes: 0 pass, 77 skip (shown, never silent), else fail.
# Ends with one line: "N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
TIMEOUT=${TEST_TIMEOUT:-300}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export BUILD BLKSTACK_TOP="$top"
logdir="$BUILD/test-logs"
mkdir -p "$logdir/unit" "$logdir/integration"

pass=0 fail=0 skip=0 failed=()
run_one() {
	local name=$1; shift
	local log="$logdir/$name.log" start end rc
	start=$(date +%s.%N)
	timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	local secs
	secs=$(printf '%.1f' "$(echo "$end - $start" | bc)")
	case $rc in
	0)  pass=$((pass + 1)); printf 'PASS %-40s %6ss\n' "$name" "$secs" ;;
	77) skip=$((skip + 1)); printf 'SKIP %-40s %6ss  %s\n' "$name" "$secs" \
		"$(tail -n 1 "$log")" ;;
	*)  fail=$((fail + 1)); failed+=("$name")
	    printf 'FAIL %-40s %6ss  (exit %d, log %s)\n' "$name" "$secs" $rc "$log"
	    tail -n 20 "$log" | sed 's/^/    | /' ;;
	esac
}

for t in "$BUILD"/tests/unit/test-*; do
	[ -x "$t" ] || continue
	case $t in *.o|*.d) continue ;; esac
	run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test-*.sh; do
	[ -e "$t" ] || continue
	run_one "integration/$(basename "$t" .sh)" bash "$t"
done

[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
