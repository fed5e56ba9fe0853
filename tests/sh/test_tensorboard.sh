#!/usr/bin/env bash
# test_tensorboard.sh BUILD — TensorBoard event files written by torsh, read
# back by an independent reader (tests/fixtures/tb_read.py: its own CRC-32C,
# protobuf wire decoding, PNG and WAV parsing): tests/fixtures/tb_write_all.lua
# uses every SummaryWriter method on data that tests/fixtures/tb_check.py
# rebuilds, and tb_check.py asserts every group of fields (histograms and PR
# curves against PyTorch's own make_histogram / compute_curve). Also: events
# stay buffered until close, a damaged file is caught by the reader, an
# unwritable log dir and a full disk (a file-size limit) end the script with
# a message instead of a crash, `--tensorboard DIR` of the training recipe
# (skipped without Fashion-MNIST), and TensorBoard's own EventAccumulator
# (skipped: Debian has no python3-tensorboard).
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
torsh="$build/torsh"
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py_has numpy || skip_all tensorboard "/usr/bin/python3 with numpy is not available"
logs="$tmp/logs"

t_write() {
  "$torsh" tests/fixtures/tb_write_all.lua "$logs" > "$tmp/write.out" || return 1
  # nothing was written before close but the file version record
  read -r _ pending _ size < "$tmp/write.out"
  [ "$pending" = 40 ] || { echo "pending $pending"; return 1; }
  "$py" - "$logs/main" "$size" <<'EOF'
import glob, struct, sys
path = glob.glob(sys.argv[1] + "/events.out.tfevents.*")[0]
(n,) = struct.unpack("<Q", open(path, "rb").read(8))
assert int(sys.argv[2]) == 16 + n, "file had %s bytes before close, the first record is %d" % (sys.argv[2], 16 + n)
EOF
}
check "every SummaryWriter method writes; events are buffered until close" t_write

t_read() { "$py" tests/fixtures/tb_read.py "$logs" > "$tmp/all.json" && "$py" -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/all.json"; }
check "the independent reader accepts every record's CRCs" t_read

for group in files scalars histograms images audio text pr_curves hparams custom_scalars graph embeddings; do
  check "fields: $group" "$py" tests/fixtures/tb_check.py "$logs" "$group"
done

t_damaged() {
  f=$(ls "$logs"/main/events.out.tfevents.* | head -1)
  cp "$f" "$tmp/damaged"
  size=$(stat -c %s "$tmp/damaged")
  printf 'Z' | dd of="$tmp/damaged" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  ! "$py" tests/fixtures/tb_read.py "$tmp/damaged" > /dev/null 2> "$tmp/damaged.err" &&
    grep -q "bad .*CRC" "$tmp/damaged.err"
}
check "a damaged event file fails the reader's CRC check" t_damaged

t_unwritable() {
  touch "$tmp/plain"
  "$torsh" -e "torsh.tb.SummaryWriter('$tmp/plain/logs')" 2> "$tmp/unw.err"
  [ $? -eq 1 ] || return 1
  grep -q "cannot create log dir '$tmp/plain/logs': Not a directory" "$tmp/unw.err" || return 1
  ! grep -qi "segmentation\|abort\|traceback (most" "$tmp/unw.err"
}
check "an unwritable log dir is an error message" t_unwritable

t_full_disk() {
  # a file-size limit stands in for a full disk: write(2) fails with EFBIG
  ( trap '' XFSZ; ulimit -f 16
    "$torsh" -e "
      local w = torsh.tb.SummaryWriter('$tmp/full', { max_queue = 1 })
      for i = 1, 100000 do w:add_scalar('loss', i, i) end" ) > /dev/null 2> "$tmp/full.err"
  rc=$?
  [ $rc -eq 1 ] || { echo "exit status $rc"; cat "$tmp/full.err"; return 1; }
  grep -q "tb: writing .*events.out.tfevents.*: File too large" "$tmp/full.err" || { cat "$tmp/full.err"; return 1; }
  # what reached the disk is still readable up to the last whole record
  "$py" - "$tmp/full" <<'EOF'
import glob, struct, sys
path = glob.glob(sys.argv[1] + "/events.out.tfevents.*")[0]
buf = open(path, "rb").read()
pos = n = 0
while pos + 12 <= len(buf):
    (size,) = struct.unpack("<Q", buf[pos:pos + 8])
    if pos + 16 + size > len(buf):
        break
    pos += 16 + size
    n += 1
assert n > 100, n
EOF
}
check "a full disk is an error message, the file stays readable" t_full_disk

"$py" tests/fixtures/tb_check.py "$logs" tensorboard > "$tmp/tbpkg.out" 2>&1
case $? in
  0) passed=$((passed + 1)); echo "ok tensorboard's EventAccumulator loads the logs" ;;
  77) skip "tensorboard's EventAccumulator" "$(cat "$tmp/tbpkg.out")" ;;
  *) failed=$((failed + 1)); echo "not ok tensorboard's EventAccumulator loads the logs"; sed 's/^/  /' "$tmp/tbpkg.out" ;;
esac

data=/usr/share/datasets/fashion-mnist
if ls "$data"/*train-images* > /dev/null 2>&1; then
  t_train() {
    "$torsh" train recipes/fashion_mnist.lua --limit 640 --batch 64 --epochs 2 --threads 2 --seed 1 \
      --tensorboard "$tmp/train_tb" > /dev/null 2> "$tmp/train.err" || { cat "$tmp/train.err"; return 1; }
    "$py" tests/fixtures/tb_read.py "$tmp/train_tb" > "$tmp/train.json" || return 1
    "$py" - "$tmp/train.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["files"]) == 1, d["files"]
pts = {}
for e in d["files"][0]["events"]:
    for v in e.get("summary", []):
        pts.setdefault(v["tag"], []).append((e["step"], v["simple_value"]))
assert [s for s, _ in pts["train/loss"]] == [10, 20], pts["train/loss"]
assert all(0 < x < 5 for _, x in pts["train/loss"]), pts["train/loss"]
assert [s for s, _ in pts["train/lr"]] == [10, 20] and abs(pts["train/lr"][0][1] - 0.0005) < 1e-9, pts["train/lr"]
for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "samples_per_second"):
    assert [s for s, _ in pts["epoch/" + k]] == [1, 2], (k, pts.get("epoch/" + k))
assert 0 <= pts["epoch/test_accuracy"][1][1] <= 1
EOF
  }
  check "torsh train ... --tensorboard DIR logs loss, lr and epoch metrics" t_train
else
  skip "--tensorboard training run" "$data is missing"
fi

finish tensorboard
