# lib.sh — tiny harness for shell tests: check NAME COMMAND... records a case;
# skip NAME REASON records a skipped one; skip_all SUITE REASON ends a test
# whose tool or data is missing (py_has MODULE... asks /usr/bin/python3);
# finish SUITE prints "N passed, N failed[, N skipped]" and writes counts for
# tools/run-tests.sh.
passed=0; failed=0; skipped=0
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then passed=$((passed + 1)); echo "ok $name"
  else failed=$((failed + 1)); echo "not ok $name"; echo "$out" | sed 's/^/  /' | head -20; fi
}
skip() { skipped=$((skipped + 1)); echo "skip $1: $2"; }
finish() {
  if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
  else echo "$passed passed, $failed failed"; fi
  if [ -n "${TORSH_TEST_RESULTS:-}" ]; then echo "$passed $failed $skipped" > "$TORSH_TEST_RESULTS/sh_$1"; fi
  [ "$failed" -eq 0 ]
}
# skip_all SUITE REASON: the rest of the test cannot run: counts one skipped
# case, finishes and exits (status 1 only when a case already failed).
skip_all() {
  skipped=$((skipped + 1))
  echo "skip: $2"
  finish "$1"
  exit
}
# py_has MODULE...: /usr/bin/python3 exists and imports every MODULE
py_has() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $(IFS=,; echo "$*")" 2>/dev/null; }
# sanitized BUILD: programs not built with the sanitizers (lua5.4, cc without
# flags) need the runtimes preloaded / linked in
sanitized() { grep -q 'TORSH_SANITIZE:BOOL=ON' "$1/CMakeCache.txt" 2>/dev/null; }
san_preload() { echo "$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"; }
