#!/usr/bin/env bash
# test_bench_cli.sh BUILD — `torsh bench SCRIPT.lua`: JSON output, baselines
# saved then checked (passes), a doctored baseline (medians / 100) exits 1
# listing regressions, --help, and model files refused with a clear message.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
torsh="$build/torsh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ex=bench/examples/matmul_vs_add.lua
fast="--min-time 0.05 --max-runs 200"

t_json() {
  "$torsh" bench $ex --format json $fast > "$tmp/out.json" || return 1
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["cases"]) >= 1 and d["cases"][0]["median"] > 0
assert all(c["verdict"] in ("a faster", "b faster", "no significant difference") for c in d["comparisons"])
' "$tmp/out.json"
}
check "bench --format json is valid JSON" t_json

t_formats() {
  "$torsh" bench $ex --format jsonl $fast | /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' &&
  "$torsh" bench $ex --format csv $fast | /usr/bin/python3 -c 'import csv,sys; r=list(csv.reader(sys.stdin)); assert r[0][0]=="kind" and len(r)>2' &&
  "$torsh" bench $ex --format markdown $fast | grep -q '^| comparison |' &&
  "$torsh" bench $ex $fast | grep -q 'verdict'
}
check "jsonl, csv, markdown and table output" t_formats

t_baseline_pass() {
  "$torsh" bench $ex $fast --save-baseline "$tmp/base.json" > /dev/null || return 1
  [ -f "$tmp/base.json" ] && [ ! -e "$tmp/base.json.tmp" ] || return 1
  # this checks the round trip, not timing: tiny cases timed while the rest
  # of the suite (ASan builds included) loads the machine were seen 10x off,
  # so the tolerance is far beyond any noise; detection itself is tested by
  # the doctored baseline below (medians / 100, default tolerance)
  "$torsh" bench $ex $fast --baseline "$tmp/base.json" --tolerance 1000 > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; return 1; }
  grep -q "no regressions" "$tmp/err"
}
check "--save-baseline then --baseline passes" t_baseline_pass

t_baseline_fail() {
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"].values(): c["median"] /= 100
json.dump(d, open(sys.argv[2], "w"))
' "$tmp/base.json" "$tmp/doctored.json" || return 1
  "$torsh" bench $ex $fast --baseline "$tmp/doctored.json" > /dev/null 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "regression" "$tmp/err" && grep -q "add 256x256" "$tmp/err"
}
check "a doctored baseline exits 1 listing regressions" t_baseline_fail

t_help() { "$torsh" bench --help | grep -q 'cases' && "$torsh" bench --help | grep -q -- '--baseline'; }
check "bench --help" t_help

cnn=tests/fixtures/onnx/cnn_op17/model.onnx
t_model_sweep() {
  "$torsh" bench "$cnn" --batch 1,4 --threads 1,2 --min-time 0.05 --format json > "$tmp/m.json" || return 1
  /usr/bin/python3 - "$tmp/m.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cases = r["cases"]
assert len(cases) == 4, len(cases)
names = sorted(c["name"] for c in cases)
assert names == ["batch=1 threads=1", "batch=1 threads=2", "batch=4 threads=1", "batch=4 threads=2"], names
assert all(c["median"] > 0 for c in cases)
PY
}
check "MODEL: sweep over --batch x --threads" t_model_sweep
t_model_compare() {
  "$torsh" bench "$cnn" --compare "$cnn" --min-time 0.05 > "$tmp/cmp.txt" || return 1
  grep -q "vs" "$tmp/cmp.txt" && grep -Eq "no significant difference|faster|slower" "$tmp/cmp.txt"
}
check "MODEL: --compare gives a verdict" t_model_compare
t_model_missing() {
  "$torsh" bench "$tmp/none.onnx" 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] && grep -q "none.onnx" "$tmp/err"
}
check "MODEL: a missing file is an error naming it" t_model_missing
t_model_dtype() { "$torsh" bench "$cnn" --dtype bf16 2>/dev/null; [ $? -eq 2 ]; }
check "MODEL: --dtype other than f32 is refused" t_model_dtype

t_bad_format() { "$torsh" bench $ex --format xml 2>/dev/null; [ $? -eq 2 ]; }
check "bad --format is a usage error" t_bad_format

finish bench_cli
