#!/usr/bin/env bash
# run-tests.sh BUILD_DIR... — runs every test of the suite through ctest in
# each build folder (the release build, the ASan+UBSan build) and prints one
# closing line "N passed, N failed, N skipped" counting the test cases of all
# runners (each runner drops its counts in $TORSH_TEST_RESULTS). A runner that
# dies before writing its counts counts as one failure.
set -uo pipefail
[ $# -ge 1 ] || set -- build
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
overall=0; passed=0; failed=0; skipped=0
for build in "$@"; do
  echo "== tests in $build"
  mkdir -p "$results/$build"
  export TORSH_TEST_RESULTS=$results/$build
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900 > "$results/$build.log" 2>&1
  status=$?
  grep -E '^\s*[0-9]+/[0-9]+ Test|tests passed|tests failed|\*\*\*|Failed|Output' "$results/$build.log" | grep -v '^\s*$' || true
  [ $status -eq 0 ] || { sed -n '/The following tests FAILED/,$p' "$results/$build.log"; grep -B2 -A40 'Failed\|\*\*\*' "$results/$build.log" | head -200; }
  ntests=$(ctest --test-dir "$build" -N | awk '/Total Tests:/ {print $3}')
  nfiles=0
  for f in "$results/$build"/*; do
    [ -f "$f" ] || continue
    nfiles=$((nfiles + 1))
    read -r p fl s < "$f"
    passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + ${s:-0}))
  done
  # runners that crashed or timed out before writing their counts
  [ "$nfiles" -lt "$ntests" ] && failed=$((failed + ntests - nfiles))
  [ $status -eq 0 ] || overall=1
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $overall -eq 0 ] && [ $failed -eq 0 ]
