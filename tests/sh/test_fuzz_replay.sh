#!/usr/bin/env bash
# test_fuzz_replay.sh BUILD — builds every libFuzzer target tests/fuzz/fuzz_*.c
# with tests/fuzz/run.sh (clang, ASan + UBSan, linked against BUILD's
# libtorsh.a) and replays each target's seed corpus once (-runs=0): any
# crash, sanitizer report or failure without a message fails the test.
# Binaries are kept in BUILD/fuzz and only rebuilt when their sources
# change. Skips without clang, and for sanitized builds (libtorsh.a is then
# instrumented by gcc's ASan, which does not mix with clang's runtime).
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || skip_all fuzz_replay "clang is not installed"
sanitized "$build" && skip_all fuzz_replay "a sanitized build's libtorsh.a cannot be linked into libFuzzer targets; use a release build"
[ -f "$build/libtorsh.a" ] || skip_all fuzz_replay "$build/libtorsh.a is not built"

for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  eval "t_$name() { tests/fuzz/run.sh --build '$build' --replay '$src'; }"
  check "$name builds and replays its seeds without a crash" "t_$name"
done

t_detects() {
  # the harness must notice a crash: a target that traps on every input
  local dir=$build/fuzz/selftest
  mkdir -p "$dir"
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; __builtin_trap(); }\n' > "$dir/trap.c"
  clang -fsanitize=fuzzer "$dir/trap.c" -o "$dir/trap" 2>/dev/null || return 1
  echo x > "$dir/seed"
  ! "$dir/trap" -runs=0 "$dir/seed" > /dev/null 2>&1
}
check "a crashing input makes a replay fail" t_detects

finish fuzz_replay
