#!/usr/bin/env bash
# bench_hub.sh [BUILD] — download throughput over loopback: `torsh hub
# download` (SHA-256 computed while streaming and checked, fsync, rename)
# against the curl command-line tool (no hash, no fsync), the same 1 GB
# file served by nginx (sendfile) from the page cache, written to the same
# folder. Runs alternate, outputs are deleted and `sync`ed between runs;
# prints each run and the medians. Also times `curl && sync FILE` (as
# durable as torsh's result) and `curl && sha256sum` (as verified).
#   BENCH_SIZE_MB (default 1024)  BENCH_RUNS (default 5)
#   BENCH_DIR (where files are written; default: a folder under $TMPDIR,
#   then /dev/shm when it has room, to show the transfer without the disk)
set -u
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/hub/servers.sh"
torsh="$build/torsh"
size_mb=${BENCH_SIZE_MB:-1024}
runs=${BENCH_RUNS:-5}
work=$(mktemp -d)
out=$work/out
mkdir -p "$work/www"
trap 'stop_servers; rm -rf "$work"; rm -f "$out"/bench_*' EXIT
export TORSH_HOME=$work/home

echo "making a ${size_mb} MB file..."
head -c "${size_mb}M" /dev/urandom > "$work/www/big.bin"
sha=$(sha256sum "$work/www/big.bin" | cut -d' ' -f1)
cat "$work/www/big.bin" > /dev/null            # in the page cache: the server reads from memory
start_nginx "$work/www" "$work/nginx" || exit 1
url=http://127.0.0.1:$NGINX_PORT/big.bin

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_curl() {
  rm -f "$out/bench_curl.bin"; sync
  local t0; t0=$(now)
  curl -s -f -o "$out/bench_curl.bin" "$url" || { echo "curl failed" >&2; exit 1; }
  secs "$t0" "$(now)"
}
run_curl_sync() {
  rm -f "$out/bench_curl.bin"; sync
  local t0; t0=$(now)
  curl -s -f -o "$out/bench_curl.bin" "$url" && sync "$out/bench_curl.bin" || { echo "curl + sync failed" >&2; exit 1; }
  secs "$t0" "$(now)"
}
run_curl_sha() {
  rm -f "$out/bench_curl.bin"; sync
  local t0; t0=$(now)
  curl -s -f -o "$out/bench_curl.bin" "$url" && [ "$(sha256sum "$out/bench_curl.bin" | cut -d' ' -f1)" = "$sha" ] ||
    { echo "curl + sha256sum failed" >&2; exit 1; }
  secs "$t0" "$(now)"
}
run_torsh() {
  rm -f "$out/bench_torsh.bin"; sync
  local t0; t0=$(now)
  "$torsh" hub download --quiet --force "$url" --sha256 "$sha" -o "$out/bench_torsh.bin" > /dev/null ||
    { echo "torsh failed" >&2; exit 1; }
  secs "$t0" "$(now)"
}

bench_in() {
  out=$1
  mkdir -p "$out"
  echo
  echo "writing to: $out ($(df -T "$out" | awk 'NR==2 {print $2}'))"
  local c=() t=() y=() s=() i
  for i in $(seq "$runs"); do
    c+=("$(run_curl)"); t+=("$(run_torsh)"); y+=("$(run_curl_sync)"); s+=("$(run_curl_sha)")
    echo "run $i: curl ${c[-1]} s   torsh ${t[-1]} s   curl+sync ${y[-1]} s   curl+sha256sum ${s[-1]} s"
  done
  rm -f "$out"/bench_*
  local mc mt my ms
  mc=$(printf '%s\n' "${c[@]}" | median)
  mt=$(printf '%s\n' "${t[@]}" | median)
  my=$(printf '%s\n' "${y[@]}" | median)
  ms=$(printf '%s\n' "${s[@]}" | median)
  awk -v mb="$size_mb" -v c="$mc" -v t="$mt" -v y="$my" -v s="$ms" -v runs="$runs" 'BEGIN {
    printf "median of %d runs, %d MiB:\n", runs, mb
    printf "  curl                      %.3f s  %7.1f MB/s\n", c, mb * 1.048576 / c
    printf "  torsh (verified, fsynced) %.3f s  %7.1f MB/s   %.2fx curl\n", t, mb * 1.048576 / t, c / t
    printf "  curl + sync FILE          %.3f s  %7.1f MB/s   %.2fx curl\n", y, mb * 1.048576 / y, c / y
    printf "  curl + sha256sum          %.3f s  %7.1f MB/s   %.2fx curl\n", s, mb * 1.048576 / s, c / s
  }'
}

echo "sha256 block function: $("$torsh" -e 'print(require("torsh.hub.core").sha256_impl())')"
if [ -n "${BENCH_DIR:-}" ]; then
  bench_in "$BENCH_DIR"
else
  bench_in "$work/out"
  # memory (tmpfs): the transfer alone, without the disk under it
  shm_free=$(df -k /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
  if [ -n "$shm_free" ] && [ "$shm_free" -gt $((size_mb * 1024 * 5 / 2)) ]; then
    shm=$(mktemp -d /dev/shm/torsh_bench.XXXXXX)
    bench_in "$shm"
    rm -rf "$shm"
  fi
fi
