#!/usr/bin/env bash
# test_profile_cli.sh BUILD — `torsh profile`: the quickstart recipe profiled into
# a Chrome trace (complete events for every op it calls, checked against the
# recipe's own op counts with Python's json) and an HTML report that renders in
# headless Chromium (the report's script sets data-rendered="1"; the screenshot
# is a real, varied picture); speedscope / folded / SVG / JSON summary outputs;
# a failing script and os.exit(n) still write their outputs; an unwritable path
# is a message and exit 1, not a crash; script arguments and `--`; schedules;
# one inference of an ONNX model; --help. Chromium checks skip when it is missing.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
torsh="$build/torsh"
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# the ASan build is several times slower: the recipe without its training act
quick=""
if sanitized "$build"; then quick="--no-train"; fi

t_quickstart_trace() {
  "$torsh" profile recipes/quickstart.lua $quick --trace "$tmp/t.json" --html "$tmp/r.html" > "$tmp/q.out" 2> "$tmp/q.err" ||
    { cat "$tmp/q.err"; return 1; }
  grep -q "wrote $tmp/t.json, $tmp/r.html" "$tmp/q.err" || { cat "$tmp/q.err"; return 1; }
  "$py" - "$tmp/t.json" "$tmp/q.out" <<'EOF'
import json, sys, collections
d = json.load(open(sys.argv[1]))
evs = d["traceEvents"]
x = [e for e in evs if e["ph"] == "X"]
for e in x:
    assert isinstance(e["name"], str) and e["cat"] in ("op", "node", "range"), e
    assert e["dur"] >= 0 and e["ts"] >= 0 and "pid" in e and "tid" in e, e
ops = collections.Counter(e["name"] for e in x if e["cat"] == "op")
# act 1 of the recipe: 200 steps, each 2 matmul, 1 add, 1 sub, 3 mul, 2 mean, 2 item, 1 sub_;
# before them X:matmul(w_true) + b + randn * 0.1 (3 randn), zeros, t; after them sub, abs, amax, item
assert ops["matmul"] == 401, ops
assert ops["sub_"] == 200, ops
assert ops["randn"] >= 3 and ops["zeros"] >= 1 and ops["t"] >= 1 and ops["abs"] >= 1 and ops["amax"] >= 1, ops
assert ops["item"] >= 401 and ops["mean"] >= 400 and ops["mul"] >= 601, ops
mm = [e for e in x if e["name"] == "matmul"]
assert mm[0]["args"]["shapes"] == [[20000, 64], [64, 1]] and mm[0]["args"]["dtypes"] == ["f32", "f32"], mm[0]
assert any(e["args"].get("bytes_alloc", 0) > 0 for e in mm)
assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in evs)
assert any(e["ph"] == "C" for e in evs)
if "test accuracy" in open(sys.argv[2]).read():     # act 2 ran (the dataset is installed)
    for name in ("linear", "backward", "adam_step", "cross_entropy"):
        assert ops[name] > 0, (name, ops)
    assert sum(1 for e in x if e["name"] == "data" and e["cat"] == "range") >= 469
EOF
}
check "quickstart: a complete event for every op, with shapes, dtypes and bytes" t_quickstart_trace

# Reads a PNG screenshot and prints "W H distinct_colours warm_fraction" (warm: the
# orange/red of op boxes, drawn only by the report's script). PIL when present,
# else a zlib decoder of 8-bit RGB/RGBA PNGs (all five filters; top 1200 rows).
cat > "$tmp/png.py" <<'EOF'
import struct, sys, zlib
def pixels_zlib(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        if kind == b"IDAT": idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, out = bytearray(stride), []
    for y in range(min(h, 1200)):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 2: line = bytearray((x + p) & 255 for x, p in zip(line, prev))
        elif f:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                if f == 1: line[i] = (line[i] + a) & 255
                elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
                else:
                    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 2 == 0: out.extend(tuple(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return w, h, out
try:
    from PIL import Image
    im = Image.open(sys.argv[1]).convert("RGB")
    w, h = im.size
    px = [im.getpixel((x, y)) for y in range(0, h, 2) for x in range(0, w, 2)]
except ImportError:
    w, h, px = pixels_zlib(sys.argv[1])
warm = sum(1 for r, g, b in px if r >= 200 and 80 <= g <= 215 and b <= 90)
print(w, h, len(set(px)), warm / len(px))
EOF

have_chromium=""
for c in chromium chromium-browser; do command -v "$c" > /dev/null 2>&1 && { have_chromium=$c; break; }; done

t_html_renders() {
  [ -f "$tmp/r.html" ] || return 1
  ! grep -Eq '<(script|link|img)[^>]+(src|href)=' "$tmp/r.html" || { echo "the report fetches something"; return 1; }
  timeout 120 "$have_chromium" --headless=new --no-sandbox --disable-gpu --virtual-time-budget=5000 \
    --dump-dom "file://$tmp/r.html" > "$tmp/dom.html" 2> /dev/null || { echo "chromium --dump-dom failed"; return 1; }
  grep -q 'data-rendered="1"' "$tmp/dom.html" ||
    { echo "the report's script did not finish:"; grep -o 'data-render-error="[^"]*"' "$tmp/dom.html"; return 1; }
  grep -q 'data-rows="[1-9]' "$tmp/dom.html" || { echo "the op table is empty"; return 1; }
  timeout 120 "$have_chromium" --headless=new --no-sandbox --disable-gpu --virtual-time-budget=5000 \
    --screenshot="$tmp/out.png" --window-size=1280,2000 "file://$tmp/r.html" > /dev/null 2>&1
  [ -s "$tmp/out.png" ] || { echo "no screenshot"; return 1; }
  read -r w h colours warm < <("$py" "$tmp/png.py" "$tmp/out.png") || return 1
  echo "screenshot ${w}x${h}, $colours colours, op-coloured fraction $warm"
  [ "$w" -ge 1000 ] && [ "$colours" -ge 30 ] && "$py" -c "import sys; sys.exit(0 if $warm > 0.003 else 1)"
}
if [ -n "$have_chromium" ]; then
  check "the HTML report renders in headless Chromium (script ran, screenshot not blank)" t_html_renders
else
  echo "skip: chromium is not installed (HTML rendering)"
fi

cat > "$tmp/work.lua" <<'EOF'
local a, b = torsh.randn(32, 32), torsh.randn(32, 32)
local function layer(x) return x:matmul(b):relu() end
for i = 1, 10 do
  local h = layer(a)
  local s = h:sum():item()
  torsh.profiler.step()
end
print("args:", table.concat(arg, " "))
EOF

t_outputs() {
  "$torsh" profile "$tmp/work.lua" --speedscope "$tmp/s.json" --folded "$tmp/f.txt" --flame "$tmp/f.svg" \
    --summary-out "$tmp/sum.json" --format json --group-by-shape > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; return 1; }
  "$py" - "$tmp" <<'EOF'
import json, re, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
s = json.load(open(d + "/s.json"))
assert s["$schema"].endswith("file-format-schema.json") and s["profiles"][0]["type"] == "evented"
names = [f["name"] for f in s["shared"]["frames"]]
assert "matmul" in names and "layer" in names, names
for p in s["profiles"]:
    depth, last = 0, -1
    for e in p["events"]:
        assert e["at"] >= last; last = e["at"]
        depth += 1 if e["type"] == "O" else -1
        assert depth >= 0
    assert depth == 0
lines = open(d + "/f.txt").read().splitlines()
assert lines and all(re.match(r"^(.*)\s+(\d+(?:\.\d*)?)$", l) for l in lines), lines[:3]
assert any(l.split(" ")[0].count(";") >= 1 and ";layer (" in l and re.search(r";matmul \d+$", l) for l in lines), lines
svg = ET.parse(d + "/f.svg").getroot()
assert svg.tag.endswith("svg") and len(svg.findall(".//{http://www.w3.org/2000/svg}rect")) >= 4
summ = json.load(open(d + "/sum.json"))
ops = {o["name"]: o for o in summ["ops"]}
assert ops["matmul"]["count"] == 10 and ops["matmul"]["shapes"] == "f32[32,32] f32[32,32]", ops["matmul"]
assert ops["relu"]["count"] == 10 and "self_us" in ops["relu"] and "self_pct" in ops["relu"]
EOF
}
check "speedscope, folded stacks, SVG flame graph and JSON summary" t_outputs

t_default_report() {
  "$torsh" profile "$tmp/work.lua" --group-by-shape --sort count > "$tmp/out" 2>&1 || { cat "$tmp/out"; return 1; }
  grep -q "^Name .*Input shapes .*Self %" "$tmp/out" && grep -q "^matmul .*f32\[32,32\] f32\[32,32\]" "$tmp/out" &&
    grep -q "top ops by self time" "$tmp/out" && grep -q "suggestions:" "$tmp/out"
}
check "with no output file: the op table and the bottleneck report" t_default_report

t_args() {
  "$torsh" profile "$tmp/work.lua" --alpha 1 --trace "$tmp/a.json" beta -- --trace x --format y > "$tmp/out" 2>&1 ||
    { cat "$tmp/out"; return 1; }
  grep -q "^args:	--alpha 1 beta --trace x --format y$" "$tmp/out" && [ -s "$tmp/a.json" ] && [ ! -e x ]
}
check "the script gets the arguments the profiler does not know, and all after --" t_args

t_schedule() {
  "$torsh" profile "$tmp/work.lua" --schedule wait=2,warmup=1,active=3,repeat=1 --trace "$tmp/sch.json" > /dev/null 2>&1 || return 1
  "$py" - "$tmp/sch.json" <<'EOF'
import json, sys
x = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
steps = sorted(e["name"] for e in x if e["name"].startswith("ProfilerStep#"))
assert steps == ["ProfilerStep#3", "ProfilerStep#4", "ProfilerStep#5"], steps
assert sorted({e["args"]["step"] for e in x}) == [3, 4, 5]
assert sum(1 for e in x if e["name"] == "matmul") == 3
EOF
  "$torsh" profile "$tmp/work.lua" --schedule wait=x > /dev/null 2> "$tmp/err"
  [ $? -eq 2 ] && grep -q "expected wait=N" "$tmp/err"
}
check "--schedule records only the active steps; a bad spec is a usage error" t_schedule

cat > "$tmp/fails.lua" <<'EOF'
local a = torsh.ones(4, 4)
local b = a:matmul(a)
local c = b + 1
error("deliberate failure after some ops")
EOF
cat > "$tmp/exits.lua" <<'EOF'
local a = torsh.ones(4) * 2
os.exit(3)
EOF

t_script_error() {
  "$torsh" profile "$tmp/fails.lua" --trace "$tmp/e.json" --html "$tmp/e.html" > /dev/null 2> "$tmp/err"
  local rc=$?
  [ $rc -eq 1 ] || { echo "exit $rc"; cat "$tmp/err"; return 1; }
  grep -q "deliberate failure after some ops" "$tmp/err" || return 1
  "$py" -c '
import json, sys
names = [e["name"] for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
assert names.count("matmul") == 1 and names.count("add") == 1, names
' "$tmp/e.json" && [ -s "$tmp/e.html" ] || return 1
  "$torsh" profile "$tmp/exits.lua" --trace "$tmp/x.json" > /dev/null 2>&1
  rc=$?
  [ $rc -eq 3 ] || { echo "os.exit(3) gave $rc"; return 1; }
  grep -q '"name":"mul"' "$tmp/x.json"
}
check "a failing script (exit 1) and os.exit(3) still get their outputs written" t_script_error

t_unwritable() {
  "$torsh" profile "$tmp/work.lua" --trace /nonexistent-dir/t.json --html "$tmp/ok.html" > /dev/null 2> "$tmp/err"
  local rc=$?
  [ $rc -eq 1 ] || { echo "exit $rc"; cat "$tmp/err"; return 1; }
  grep -q "cannot write /nonexistent-dir/t.json" "$tmp/err" && [ -s "$tmp/ok.html" ] && ! grep -q "traceback" "$tmp/err"
}
check "an unwritable output path is an error message (exit 1) and the other outputs are written" t_unwritable

t_model() {
  local m=tests/fixtures/onnx/cnn_op13
  [ -f $m/model.onnx ] || { echo "no fixture"; return 0; }
  "$torsh" profile $m/model.onnx --input $m/input.npy --trace "$tmp/m.json" > "$tmp/out" 2>&1 || { cat "$tmp/out"; return 1; }
  "$py" - "$tmp/m.json" <<'EOF'
import json, sys
x = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
nodes = [e for e in x if e["cat"] == "node"]
assert len(nodes) >= 3 and all(e["args"].get("op") for e in nodes), nodes[:2]
inf = [e for e in x if e["name"] == "inference"]
assert len(inf) == 1 and all(inf[0]["ts"] <= e["ts"] and e["ts"] + e["dur"] <= inf[0]["ts"] + inf[0]["dur"] + 0.002 for e in nodes)
assert any(op in {e["args"]["op"] for e in nodes} for op in ("Conv", "Relu", "Gemm", "MatMul"))
EOF
  "$torsh" profile "$tmp/missing.onnx" > /dev/null 2> "$tmp/err"
  [ $? -eq 1 ] && grep -q "cannot load $tmp/missing.onnx" "$tmp/err"
}
check "one inference of an ONNX model: an event per graph node inside the inference range" t_model

t_help() {
  "$torsh" profile --help > "$tmp/help" && grep -q -- "--trace FILE" "$tmp/help" && grep -q -- "--schedule" "$tmp/help" &&
    { "$torsh" profile > /dev/null 2>&1; [ $? -eq 2 ]; }
}
check "--help, and a usage error without a target" t_help

finish profile_cli
