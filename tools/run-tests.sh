#!/usr/bin/env bash
# run-tests.sh BUILD_DIR — runs every test of the suite through ctest and
# prints one closing line "N passed, N failed, N skipped" counting the test
# cases of all runners (each runner drops its counts in $TORSH_TEST_RESULTS).
set -uo pipefail
build=${1:-build}
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
export TORSH_TEST_RESULTS=$results
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900
status=$?
passed=0; failed=0; skipped=0
for f in "$results"/*; do
  [ -f "$f" ] || continue
  read -r p fl s < "$f"
  passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + ${s:-0}))
done
# a runner that crashed before writing its counts still counts as a failure
ntests=$(ctest --test-dir "$build" -N | awk '/Total Tests:/ {print $3}')
nfiles=$(ls "$results" | wc -l)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=$((ntests - nfiles)); [ "$failed" -gt 0 ] || failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
