#!/usr/bin/env bash
# test_train.sh BUILD — the training workflow end to end on real
# Fashion-MNIST (skipped when Debian's dataset-fashion-mnist is missing):
#  - 2 epochs == 1 epoch + resume + 1 epoch, bit for bit (losses in the
#    metrics file and the saved weights), with a constant learning rate (a
#    1-epoch run with the default cosine schedule is a different run: its
#    schedule ends after 1 epoch);
#  - with the default cosine schedule, a 2-epoch run stopped by Ctrl-C
#    mid-epoch and resumed equals the uninterrupted run, bit for bit;
#  - Ctrl-C (SIGINT) during training saves a checkpoint that resumes;
#  - a corrupt checkpoint is refused with a message;
#  - `torsh train --help`.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
data=/usr/share/datasets/fashion-mnist
ls "$data"/*train-images* >/dev/null 2>&1 || skip_all train "$data is missing (install dataset-fashion-mnist)"
common=(--limit 1536 --batch 64 --threads 2 --seed 7)
recipe=recipes/fashion_mnist.lua

t_straight() {
  "$torsh" $recipe "${common[@]}" --schedule none --epochs 2 --metrics "$tmp/a.jsonl" --save "$tmp/a.torsh" > /dev/null 2>"$tmp/a.err" &&
  "$torsh" $recipe "${common[@]}" --epochs 2 --metrics "$tmp/s.jsonl" --save "$tmp/s.torsh" > /dev/null 2>"$tmp/s.err"
}
check "2 epochs straight (constant and cosine learning rate)" t_straight

t_resumed() {
  "$torsh" $recipe "${common[@]}" --schedule none --epochs 1 --checkpoint "$tmp/ck.torsh" > /dev/null 2>"$tmp/b1.err" &&
  "$torsh" $recipe "${common[@]}" --schedule none --epochs 2 --checkpoint "$tmp/ck.torsh" --resume "$tmp/ck.torsh" \
    --metrics "$tmp/b.jsonl" --save "$tmp/b.torsh" > /dev/null 2>"$tmp/b2.err"
}
check "1 epoch + resume + 1 epoch" t_resumed

same_run() {   # metrics equal except wall-clock fields; weights bit-identical
  "$torsh" -e "
    local cjson = require 'cjson'
    local function read(p)
      local out = {}
      for line in io.lines(p) do
        local r = cjson.decode(line)
        r.seconds, r.samples_per_second = nil, nil
        out[#out + 1] = r
      end
      return out
    end
    local a, b = read('$1'), read('$2')
    assert(#a == 2 and #b == 2, 'two epochs in each metrics file')
    for i = 1, 2 do
      for k, v in pairs(a[i]) do
        assert(b[i][k] == v, string.format('epoch %d %s: %s vs %s', i, k, tostring(v), tostring(b[i][k])))
      end
    end
    local wa, wb = torsh.load('$3'), torsh.load('$4')
    local n = 0
    for k, t in pairs(wa) do
      n = n + 1
      assert(wb[k], 'missing ' .. k)
      assert(t:eq(wb[k]):all():item(), 'weights differ: ' .. k)
    end
    assert(n > 0)
  "
}
t_bitwise() { same_run "$tmp/a.jsonl" "$tmp/b.jsonl" "$tmp/a.torsh" "$tmp/b.torsh"; }
check "resumed run is bit-identical" t_bitwise

t_mid_epoch() {
  # checkpoint every 7 steps, stop after the first epoch's 10th step by resuming from the step-7 checkpoint
  "$torsh" $recipe "${common[@]}" --epochs 1 --checkpoint "$tmp/mid.torsh" --checkpoint-every 7 > /dev/null 2>&1 || return 1
  "$torsh" -e "local c = torsh.load('$tmp/mid.torsh'); assert(c.step == 24, 'epoch-end checkpoint at step 24, got ' .. tostring(c.step))" || return 1
  # interrupt a fresh run with SIGINT mid-epoch, then resume to the end
  "$torsh" $recipe "${common[@]}" --epochs 2 --checkpoint "$tmp/int.torsh" > /dev/null 2>"$tmp/int.err" &
  pid=$!
  for _ in $(seq 1 100); do [ -f "$tmp/int.torsh" ] && break; sleep 0.1; done
  sleep 0.5
  kill -INT $pid; wait $pid; rc=$?
  if [ $rc -eq 130 ]; then
    grep -q "checkpoint saved" "$tmp/int.err" || return 1
  fi
  "$torsh" $recipe "${common[@]}" --epochs 2 --checkpoint "$tmp/int.torsh" --resume "$tmp/int.torsh" \
    --metrics "$tmp/c.jsonl" --save "$tmp/c.torsh" > /dev/null 2>"$tmp/c.err" || return 1
  same_run "$tmp/s.jsonl" "$tmp/c.jsonl" "$tmp/s.torsh" "$tmp/c.torsh"
}
check "Ctrl-C mid-epoch saves a checkpoint; resuming it is bit-identical" t_mid_epoch

t_corrupt() {
  cp "$tmp/ck.torsh" "$tmp/bad.torsh"
  size=$(stat -c %s "$tmp/bad.torsh")
  printf 'XXXXXXXX' | dd of="$tmp/bad.torsh" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
  ! "$torsh" $recipe "${common[@]}" --epochs 2 --resume "$tmp/bad.torsh" > /dev/null 2>"$tmp/bad.err" &&
    grep -qi "crc\|corrupt\|checksum" "$tmp/bad.err"
}
check "a corrupt checkpoint is refused" t_corrupt

t_help() { "$torsh" train --help | grep -q "fashion_mnist.lua" && "$torsh" $recipe --help | grep -q -- "--resume"; }
check "torsh train --help" t_help

finish train
