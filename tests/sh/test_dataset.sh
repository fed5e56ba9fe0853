#!/usr/bin/env bash
# test_dataset.sh BUILD — `torsh dataset`: ls, info on a small Fashion-MNIST
# made here (sizes, class names and counts, mean/std checked against NumPy),
# json/yaml/table output, errors (missing files name the path and the Debian
# package; exit statuses 1 and 2), and info on the real data set when
# Debian's dataset-fashion-mnist is installed.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3

# 50 train and 20 test images 6x5, labels cycling through the 10 classes
$py - "$tmp/fm" <<'PY'
import gzip, os, struct, sys
import numpy as np
root = sys.argv[1]
os.makedirs(root)
rng = np.random.default_rng(3)
for split, n in (("train", 50), ("t10k", 20)):
    x = rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8)
    y = (np.arange(n) * 7 % 10).astype(np.uint8)
    with gzip.open(f"{root}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", n, 6, 5) + x.tobytes())
    with gzip.open(f"{root}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", n) + y.tobytes())
    if split == "train":
        np.save(f"{root}/expect.npy", np.array([(x / 255).mean(), (x / 255).std()]))
PY

t_json() {
  "$torsh" dataset info fashion-mnist --root "$tmp/fm" --format json > "$tmp/info.json" || return 1
  $py - "$tmp/info.json" "$tmp/fm/expect.npy" <<'PY'
import json, sys
import numpy as np
d = json.load(open(sys.argv[1]))
mean, std = np.load(sys.argv[2])
assert d["train"]["samples"] == 50 and d["test"]["samples"] == 20, d
assert d["image_shape"] == [6, 5] and d["channels"] == 1 and d["dtype"] == "u8", d
assert abs(d["mean"][0] - mean) < 1e-12 and abs(d["std"][0] - std) < 1e-9, (d["mean"], mean, d["std"], std)
names = [c["name"] for c in d["classes"]]
assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10, names
assert [c["train"] for c in d["classes"]] == [5] * 10 and [c["test"] for c in d["classes"]] == [2] * 10
assert [c["label"] for c in d["classes"]] == list(range(10))
PY
}
check "info --format json: sizes, classes, mean/std match NumPy" t_json

t_table() {
  out=$("$torsh" dataset info fashion-mnist --root "$tmp/fm") || return 1
  echo "$out" | grep -q "^train  *50 samples" && echo "$out" | grep -q "^test  *20 samples" &&
    echo "$out" | grep -q "^image shape  *6 x 5 (1 channel, u8)" && echo "$out" | grep -qE "^9 +Ankle boot +5 +2" &&
    echo "$out" | grep -q "^mean (train)"
}
check "info as a table" t_table

t_yaml() { "$torsh" dataset info fashion-mnist --root "$tmp/fm" --format yaml | grep -q "^  - label: 0"; }
check "info --format yaml" t_yaml

t_ls() {
  "$torsh" dataset ls --format json > "$tmp/ls.json" || return 1
  $py -c 'import json,sys; d=json.load(open(sys.argv[1])); n=[r["name"] for r in d]; assert n==["cifar10","fashion-mnist","mnist"], n' "$tmp/ls.json" &&
    "$torsh" dataset ls | grep -q "^fashion-mnist"
}
check "ls lists the known data sets" t_ls

t_missing() {
  "$torsh" dataset info fashion-mnist --root "$tmp/none" 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "$tmp/none/train-images-idx3-ubyte.gz not found" "$tmp/err" && grep -q "dataset-fashion-mnist" "$tmp/err"
}
check "a missing data set names the path and the package, exit 1" t_missing

t_corrupt() {
  mkdir -p "$tmp/bad" && cp "$tmp/fm"/*.gz "$tmp/bad/" &&
    head -c 40 "$tmp/fm/train-images-idx3-ubyte.gz" > "$tmp/bad/train-images-idx3-ubyte.gz"
  "$torsh" dataset info fashion-mnist --root "$tmp/bad" 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "train-images-idx3-ubyte.gz" "$tmp/err" && grep -qi "truncated\|gzip" "$tmp/err"
}
check "a truncated file is reported, exit 1" t_corrupt

t_usage() {
  "$torsh" dataset 2>/dev/null; [ $? -eq 2 ] || return 1
  "$torsh" dataset frobnicate 2>/dev/null; [ $? -eq 2 ] || return 1
  "$torsh" dataset info 2>/dev/null; [ $? -eq 2 ] || return 1
  "$torsh" dataset info imagenet 2> "$tmp/err"; [ $? -eq 1 ] && grep -q "unknown data set 'imagenet'" "$tmp/err" &&
    "$torsh" dataset --help | grep -q "ls | info NAME"
}
check "usage errors exit 2, unknown data set exits 1" t_usage

if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  t_real() {
    out=$("$torsh" dataset info fashion-mnist) || return 1
    echo "$out" | grep -q "^train  *60000 samples" && echo "$out" | grep -q "^test  *10000 samples" &&
      echo "$out" | grep -q "^mean (train)  *0.2860" && echo "$out" | grep -q "^std (train)  *0.3530" &&
      echo "$out" | grep -qE "^0 +T-shirt/top +6000 +1000"
  }
  check "info fashion-mnist on Debian's files" t_real
else
  skip "info fashion-mnist on Debian's files" "dataset-fashion-mnist is not installed"
fi

finish dataset
