#!/usr/bin/env bash
# Run every bench/*.sh but this one (make bench). BUILD is passed on. Fails
# if any benchmark script fails; a missed target is a figure, not a failure.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-build}
failed=()
for b in "$top"/bench/*.sh; do
	[ "$(basename "$b")" = run-all.sh ] && continue
	echo "== $(basename "$b")"
	bash "$b" || failed+=("$(basename "$b")")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
