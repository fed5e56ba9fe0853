#!/usr/bin/env bash
# test_save_kill.sh BUILD — torsh.save is atomic: a process saving a 200 MB
# checkpoint in a loop over a good one is killed with SIGKILL at random
# moments (10 times); after each kill torsh.load of the path must succeed
# (checksums verified) and give one complete version, never a mix or a
# partial file. Also: a save that fails mid-write (file size limit) raises,
# removes its temp file and leaves the old checkpoint intact.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ckpt="$tmp/ckpt.torsh"
N=50000000            # f32 elements: 200 MB
KILLS=10

# saver.lua PATH FIRST: saves versions FIRST, FIRST+1, ... forever
cat > "$tmp/saver.lua" <<'EOF'
require "torsh.io"
local path, v = arg[1], math.tointeger(tonumber(arg[2]))
local w = torsh.empty(math.tointeger(tonumber(arg[3])))
while true do
  w:fill_(v)
  torsh.save({ w = w, version = v, tail = { v, "v" .. v } }, path, { metadata = { version = v } })
  v = v + 1
end
EOF

# check.lua PATH N: prints the version held by a complete, consistent file
cat > "$tmp/check.lua" <<'EOF'
require "torsh.io"
local value, meta = torsh.load(arg[1])      -- verifies every CRC-32
local v, n = value.version, math.tointeger(tonumber(arg[2]))
assert(math.type(v) == "integer" and meta.version == v, "version mismatch")
assert(value.tail[1] == v and value.tail[2] == "v" .. v, "tail mismatch")
assert(value.w:numel() == n, "wrong size")
assert(value.w:amin():item() == v and value.w:amax():item() == v, "tensor data from another version")
print(v)
EOF

t_initial() { "$torsh" -e "require 'torsh.io'; torsh.save({ w = torsh.zeros($N), version = 0, tail = { 0, 'v0' } }, '$ckpt', { metadata = { version = 0 } })" \
              && [ "$("$torsh" "$tmp/check.lua" "$ckpt" $N)" = 0 ]; }
check "a good 200 MB checkpoint to start from" t_initial

t_kills() {
  local last=0 stale=0 advanced=0 i=0
  local start=$SECONDS
  # at least KILLS kills, and more (up to 25, 60 s) until some landed inside
  # a save and some after a completed one, so a loaded machine cannot make
  # the test vacuous
  while [ $i -lt $KILLS ] || { [ $((stale * advanced)) -eq 0 ] && [ $i -lt 25 ] && [ $((SECONDS - start)) -lt 60 ]; }; do
    i=$((i + 1))
    "$torsh" "$tmp/saver.lua" "$ckpt" $((last + 1)) $N &
    local pid=$!
    if [ $((i % 2)) -eq 1 ]; then
      # anywhere in 0.5 .. 2.5 s: allocating, filling, checksumming, writing, fsync, rename
      sleep "$((RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))"; sleep 0.5
    else
      # while a temp file is being written: 0 .. 99 ms after one appears
      local waited=0
      while [ -z "$(find "$tmp" -name 'ckpt.torsh.tmp.*' -print -quit)" ] && [ $waited -lt 500 ]; do
        sleep 0.01; waited=$((waited + 1))
      done
      sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
    fi
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    local v
    v=$("$torsh" "$tmp/check.lua" "$ckpt" $N) || { echo "kill $i: the checkpoint does not load"; return 1; }
    [ "$v" -ge "$last" ] || { echo "kill $i: version went back from $last to $v"; return 1; }
    [ "$v" -gt "$last" ] && advanced=$((advanced + 1))
    last=$v
    local tmps
    tmps=$(find "$tmp" -name 'ckpt.torsh.tmp.*' | wc -l)
    [ "$tmps" -gt 0 ] && stale=$((stale + 1))
    find "$tmp" -name 'ckpt.torsh.tmp.*' -delete
    echo "kill $i: version $v complete (temp file left: $tmps)"
  done
  echo "$i kills in $((SECONDS - start)) s; $stale interrupted a save, $advanced found a newer version"
  # the test must have hit saves in flight, and saves must have completed
  [ "$stale" -gt 0 ] && [ "$advanced" -gt 0 ]
}
check "kill -9 during saves never loses the last good checkpoint" t_kills

t_write_error() {
  local before after
  before=$(cksum < "$ckpt")
  # a 1 MiB file size limit makes write() fail with EFBIG half-way
  ( trap '' XFSZ; ulimit -f 1024; exec "$torsh" -e "require 'torsh.io'; torsh.save({ w = torsh.ones($N) }, '$ckpt')" ) 2> "$tmp/err"
  local rc=$?
  after=$(cksum < "$ckpt")
  [ $rc -ne 0 ] && grep -q "torsh.save: cannot write" "$tmp/err" && grep -q "File too large" "$tmp/err" \
    && [ "$before" = "$after" ] && [ -z "$(find "$tmp" -name 'ckpt.torsh.tmp.*')" ] \
    && "$torsh" "$tmp/check.lua" "$ckpt" $N > /dev/null
}
check "a save failing mid-write removes its temp file and keeps the old one" t_write_error

finish save_kill
