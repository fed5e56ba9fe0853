#!/usr/bin/env bash
# test_embed.sh BUILD — installs libtorsh (headers, shared and static
# libraries, torsh.pc) into a temporary prefix, builds examples/embed.c
# against it with pkg-config alone, and runs it.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

t_install() { cmake --install "$build" --prefix "$tmp/prefix" > /dev/null; }
check "cmake --install into a prefix" t_install

san=""
sanitized "$build" && san="-fsanitize=address,undefined"
pcdir=$(dirname "$(find "$tmp/prefix" -name torsh.pc | head -1)")
t_build_shared() {
  PKG_CONFIG_PATH=$pcdir cc -std=c11 $san -o "$tmp/embed" examples/embed.c $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs torsh)
}
check "embed.c builds with pkg-config (shared)" t_build_shared

t_run_shared() {
  out=$(LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libtorsh.so' | head -1)") "$tmp/embed") || return 1
  echo "$out" | grep -q "sum = 30" && echo "$out" | grep -q "matmul: shapes \[2, 3\] and \[2, 3\] do not line up"
}
check "embedded program computes and reports errors" t_run_shared

t_static() {
  PKG_CONFIG_PATH=$pcdir cc -std=c11 $san -o "$tmp/embed_static" examples/embed.c $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags torsh) \
    "$(find "$tmp/prefix" -name libtorsh.a | head -1)" $(pkg-config --libs libcurl) $(pkg-config --libs zlib) -lpthread -ldl -lm && "$tmp/embed_static" | grep -q "sum = 30"
}
check "embed.c links statically" t_static

finish embed
