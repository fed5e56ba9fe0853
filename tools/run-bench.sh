#!/usr/bin/env bash
# run-bench.sh BUILD — runs every benchmark in bench/ (each prints its own
# ratio against PyTorch measured in the same run).
set -euo pipefail
build=${1:-build}
for b in bench/bench_*.lua; do
  echo "== $b"
  "$build/torsh" "$b" --build "$build"
done
