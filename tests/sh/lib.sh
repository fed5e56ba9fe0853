# lib.sh — tiny harness for shell tests: check NAME COMMAND... records a case;
# finish prints "N passed, N failed" and writes counts for tools/run-tests.sh.
passed=0; failed=0
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then passed=$((passed + 1)); echo "ok $name"
  else failed=$((failed + 1)); echo "not ok $name"; echo "$out" | sed 's/^/  /' | head -20; fi
}
finish() {
  echo "$passed passed, $failed failed"
  if [ -n "${TORSH_TEST_RESULTS:-}" ]; then echo "$passed $failed 0" > "$TORSH_TEST_RESULTS/sh_$1"; fi
  [ "$failed" -eq 0 ]
}
# sanitized BUILD: programs not built with the sanitizers (lua5.4, cc without
# flags) need the runtimes preloaded / linked in
sanitized() { grep -q 'TORSH_SANITIZE:BOOL=ON' "$1/CMakeCache.txt" 2>/dev/null; }
san_preload() { echo "$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"; }
