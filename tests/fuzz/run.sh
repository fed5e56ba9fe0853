#!/usr/bin/env bash
# run.sh — builds the libFuzzer targets tests/fuzz/fuzz_*.c and fuzzes (or
# replays) them. See README.md.
#
#   tests/fuzz/run.sh [--build DIR] [--out DIR] [--seconds N] [--replay] [TARGET ...]
#
# --build DIR   a torsh build folder holding libtorsh.a (default: build)
# --out DIR     where binaries and new corpus inputs go (default: DIR/fuzz)
# --seconds N   fuzz each target for N seconds (default 60)
# --replay      run each seed input once instead (-runs=0), fail on any crash
# TARGET        names like pt, fuzz_pt or tests/fuzz/fuzz_pt.c (default: all)
#
# Each target names the core sources to instrument on a line
#     // fuzz-sources: core/io/a.c core/io/b.c
# and may name its seed folders on a line
#     // fuzz-corpus: tests/fuzz/corpus_x tests/fixtures/x
# (default tests/fuzz/corpus_<name without fuzz_>). The target and its
# sources are compiled with clang -fsanitize=fuzzer,address,undefined; the
# rest of the core comes from libtorsh.a (its copies of the instrumented
# sources are never pulled in, as the linker already has their symbols).
# A binary is rebuilt only when it is older than its sources, the headers
# or libtorsh.a. Seed folders are never written: new inputs go to
# OUT/corpus_<name>, crashes to OUT/crash-<name>-*.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
out=
seconds=60
replay=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --replay) replay=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run.sh: no build folder" >&2; exit 2; }
out=${out:-$build/fuzz}
lib=$build/libtorsh.a
command -v clang >/dev/null || { echo "run.sh: clang is not installed" >&2; exit 2; }
[ -f "$lib" ] || { echo "run.sh: $lib is missing; build torsh first" >&2; exit 2; }
mkdir -p "$out"
cd "$root"

if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$f"); done
fi
libs="-lz -lm -lpthread -ldl"
for pkg in libcurl libprotobuf-c; do
  libs="$libs $(pkg-config --libs "$pkg" 2>/dev/null)"
done
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -Icore/include -Icore/tensor -Icore/autograd -Icore/io -I$build/proto -Itests/fuzz"

field() {   # field NAME FILE: the words after "// fuzz-NAME:"
  sed -n "s|^// fuzz-$1:[[:space:]]*||p" "$2" | head -1
}

newer_than() {   # newer_than BIN FILE...: true when some FILE is newer than BIN (or BIN is missing)
  local bin=$1; shift
  [ -f "$bin" ] || return 0
  local f
  for f in "$@"; do [ "$f" -nt "$bin" ] && return 0; done
  return 1
}

status=0
for t in "${targets[@]}"; do
  name=$(basename "$t" .c); name=${name#fuzz_}
  src=tests/fuzz/fuzz_$name.c
  [ -f "$src" ] || { echo "run.sh: no target $src" >&2; status=1; continue; }
  sources=$(field sources "$src")
  [ -n "$sources" ] || echo "run.sh: $src has no '// fuzz-sources:' line; only the target itself is instrumented" >&2
  corpus=$(field corpus "$src")
  [ -n "$corpus" ] || corpus=tests/fuzz/corpus_$name
  bin=$out/fuzz_$name
  # shellcheck disable=SC2086
  if newer_than "$bin" "$src" $sources "$lib" core/include/torsh/*.h core/io/*.h tests/fuzz/fuzz_common.h; then
    echo "build fuzz_$name ($sources)"
    # shellcheck disable=SC2086
    if ! clang $cflags "$src" $sources "$lib" $libs -o "$bin.tmp" 2> "$out/build_$name.log"; then
      echo "FAIL build fuzz_$name:"; sed 's/^/  /' "$out/build_$name.log" | head -30
      status=1; continue
    fi
    mv "$bin.tmp" "$bin"
  fi
  seeds=()
  for d in $corpus; do
    [ -d "$d" ] || { echo "run.sh: fuzz_$name: seed folder $d is missing" >&2; continue; }
    while IFS= read -r f; do seeds+=("$f"); done < <(find "$d" -maxdepth 1 -type f | sort)
  done
  if [ "$replay" = 1 ]; then
    if [ ${#seeds[@]} -eq 0 ]; then echo "run.sh: fuzz_$name has no seeds" >&2; status=1; continue; fi
    if "$bin" -runs=0 -timeout=20 -rss_limit_mb=2048 "${seeds[@]}" > "$out/replay_$name.log" 2>&1; then
      echo "ok fuzz_$name: replayed ${#seeds[@]} seeds"
    else
      echo "FAIL fuzz_$name: a seed crashed:"; grep -E "ERROR|SUMMARY|Running:|runtime error" "$out/replay_$name.log" | tail -12 | sed 's/^/  /'
      status=1
    fi
  else
    work=$out/corpus_$name
    mkdir -p "$work"
    echo "fuzz fuzz_$name for ${seconds}s (new inputs: $work)"
    dirs=()
    for d in $corpus; do [ -d "$d" ] && dirs+=("$d"); done
    if ! "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=20 -rss_limit_mb=2048 \
         -artifact_prefix="$out/crash-$name-" -print_final_stats=1 "$work" "${dirs[@]}" > "$out/fuzz_$name.log" 2>&1; then
      echo "FAIL fuzz_$name: see $out/fuzz_$name.log"; grep -E "ERROR|SUMMARY" "$out/fuzz_$name.log" | head -5 | sed 's/^/  /'
      status=1
    else
      grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$name.log" | sed 's/^/  /'
    fi
  fi
done
exit $status
