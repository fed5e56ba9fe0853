#!/usr/bin/env bash
# test_onnx_interop.sh BUILD — real PyTorch ONNX exports through torsh:
# tests/fixtures/gen_onnx.py exports torchvision resnet18 and mobilenet_v2
# and an nn.TransformerEncoder (random seeded weights, opsets 13 and 17, batch
# dim dynamic) plus the small MLP/CNN into a temp folder with inputs and
# PyTorch's outputs; BUILD/tests/test_onnx_interop loads, runs and compares
# each (max abs <= 1e-4) and writes torsh's own exports (inline and external
# data), which must pass onnx.checker.check_model (also with full_check, i.e.
# ONNX's shape inference agrees with the value infos torsh writes); the same
# models run through the Lua API (torsh.model.load / m:run) when it exists.
# onnx's reference evaluator is not used. Skips without torch/torchvision/onnx.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
py_has torch torchvision onnx ||
  skip_all onnx_interop "/usr/bin/python3 with torch, torchvision and onnx is not available"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

t_generate() { "$py" tests/fixtures/gen_onnx.py "$tmp/models" all >/dev/null && [ -f "$tmp/models/transformer_op17/model.onnx" ]; }
check "gen_onnx.py exports resnet18, mobilenet_v2, transformer, mlp, cnn at opsets 13 and 17" t_generate

# the C driver: load, run, compare with PyTorch; export; re-import
t_run() {
  TORSH_TEST_RESULTS= TORSH_ONNX_INTEROP_DIR="$tmp/models" "$build/tests/test_onnx_interop" | tee "$tmp/run.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q "^10 passed, 0 failed" "$tmp/run.log"
}
check "10 PyTorch exports run in torsh with PyTorch's outputs (max abs <= 1e-4), exports re-import" t_run
grep "max abs difference" "$tmp/run.log" 2>/dev/null | sed 's/^ */  /'

t_checker() {
  "$py" - "$tmp/models" <<'EOF'
import glob, os, sys
import onnx
from onnx import numpy_helper
files = sorted(glob.glob(os.path.join(sys.argv[1], "*", "torsh*.onnx")))
assert len(files) == 20, "expected 20 torsh exports, found %d" % len(files)
for f in files:
    onnx.checker.check_model(f)                  # a path: external data is checked too
    m = onnx.load(f)                             # loads PATH.data for torsh_ext.onnx
    assert m.producer_name == "torsh", f
    op = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    assert m.ir_version == (8 if op <= 18 else 9), (f, m.ir_version)
    onnx.checker.check_model(m, full_check=True)  # + ONNX shape inference vs torsh's value infos
    src = onnx.load(os.path.join(os.path.dirname(f), "model.onnx"))
    a = {t.name: numpy_helper.to_array(t) for t in src.graph.initializer}
    b = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert a.keys() == b.keys(), f
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and (a[k] == b[k]).all(), (f, k)
    assert [n.op_type for n in m.graph.node if n.op_type != "Constant"] == \
           [n.op_type for n in src.graph.node if n.op_type != "Constant"], f
    if f.endswith("_ext.onnx"):
        ext = [t for t in onnx.load(f, load_external_data=False).graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL]
        assert ext or not any(v.nbytes >= 1024 for v in a.values()), f
print("%d torsh exports pass onnx.checker" % len(files))
EOF
}
check "torsh's exports pass onnx.checker.check_model (full_check) with the same weights and ops" t_checker

t_lua() {
  if ! "$build/torsh" -e 'assert(require("torsh.model").load)' >/dev/null 2>&1; then
    echo "torsh.model is not available yet"; return 0
  fi
  "$build/torsh" -e "
    local model, data = require 'torsh.model', require 'torsh.data'
    local n = 0
    for _, name in ipairs { 'mlp_op13', 'cnn_op17', 'resnet18_op17', 'mobilenet_v2_op13', 'transformer_op13', 'transformer_op17' } do
      local dir = '$tmp/models/' .. name
      local m = model.load(dir .. '/model.onnx')
      local y = m:run(assert(data.npy_read(dir .. '/input.npy')))
      local want = assert(data.npy_read(dir .. '/expected.npy'))
      local diff = (y - want):abs():amax():item()
      print(string.format('  lua %s: max abs difference %.3g', name, diff))
      assert(diff <= 1e-4, name .. ': outputs differ by ' .. diff)
      n = n + 1
    end
    assert(n == 6)
  "
}
check "the same models through torsh.model.load / m:run" t_lua

finish onnx_interop
