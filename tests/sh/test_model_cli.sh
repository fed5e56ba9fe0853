#!/usr/bin/env bash
# test_model_cli.sh BUILD — `torsh model inspect | convert | run | validate |
# diff` end to end: torchvision's ResNet-18 exported to ONNX by real PyTorch
# (BatchNorm kept, dynamic batch) is inspected (11,689,512 parameters, about
# 3.6 GFLOPs at 224x224), run on PyTorch's input (outputs within 1e-4 of
# PyTorch's), converted to .torsh and run again; weight files become models
# through --arch; validate compares a model with a reference over
# Fashion-MNIST; diff finds changed tensors; bad input gives clear errors.
# The PyTorch parts skip when /usr/bin/python3 has no torch.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
torsh="$build/torsh"
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# ---- without PyTorch ---------------------------------------------------------------
check "model --help lists the subcommands" bash -c "'$torsh' model --help | grep -q 'inspect FILE'"
check "model inspect --help" bash -c "'$torsh' model inspect --help | grep -q -- '--dot FILE'"
check "unknown subcommand exits 2" bash -c "'$torsh' model frobnicate 2>&1; test \$? -eq 2"
check "missing file: exit 1 naming it" bash -c "out=\$('$torsh' model inspect '$tmp/nope.onnx' 2>&1); test \$? -eq 1 && echo \"\$out\" | grep -q nope.onnx"

cat > "$tmp/mk.lua" <<'EOF'
local dir = ...
torsh.manual_seed(1)
local m = torsh.nn.zoo.fashion_cnn()
torsh.save(m:state_dict(), dir .. "/a.pt", { keys = m:state_dict_keys() })
local sd = m:state_dict()
sd["0.weight"] = sd["0.weight"] + 0.5
torsh.save(sd, dir .. "/b.pt", { keys = m:state_dict_keys() })
EOF
check "make weight files" "$torsh" "$tmp/mk.lua" "$tmp"
check "diff of a file with itself: exit 0" "$torsh" model diff "$tmp/a.pt" "$tmp/a.pt"
check "diff finds the changed tensor (exit 1)" bash -c "out=\$('$torsh' model diff '$tmp/a.pt' '$tmp/b.pt' --format json); test \$? -eq 1 && echo \"\$out\" | grep -q '\"0.weight\"' && echo \"\$out\" | grep -q 'values differ'"
check "convert .pt -> .safetensors keeps every tensor" bash -c "'$torsh' model convert '$tmp/a.pt' '$tmp/a.safetensors' && '$torsh' model diff '$tmp/a.pt' '$tmp/a.safetensors'"
check "convert .pt --arch -> .torsh model, inspect it" bash -c "'$torsh' model convert '$tmp/a.pt' '$tmp/a.torsh' --arch fashion_cnn && '$torsh' model inspect '$tmp/a.torsh' --format json | grep -q '\"format\": *\"torsh\"'"
check "weights without --arch: clear error" bash -c "out=\$('$torsh' model run '$tmp/a.pt' --bench 2>&1); test \$? -eq 1 && echo \"\$out\" | grep -q -- 'pass an architecture'"
if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  check "validate against a reference: identical models agree" bash -c "out=\$('$torsh' model validate '$tmp/a.torsh' --reference '$tmp/a.pt' --arch fashion_cnn --limit 300 --format json --tolerance 1e-5) && echo \"\$out\" | grep -q '\"argmax_agreement\": *1' && echo \"\$out\" | grep -q '\"samples\": *300'"
  check "validate: a changed model differs (tolerance exceeded, exit 1)" bash -c "'$torsh' model validate '$tmp/b.pt' --arch fashion_cnn --reference '$tmp/a.pt' --limit 100 --tolerance 1e-5 >/dev/null 2>&1; test \$? -eq 1"
fi

py_has torch torchvision || skip_all model_cli "/usr/bin/python3 with torch/torchvision is not available (PyTorch cases)"

# ---- ResNet-18 from PyTorch's ONNX exporter ---------------------------------------------
cat > "$tmp/export.py" <<'EOF'
import sys, warnings, numpy as np, torch, torchvision
warnings.filterwarnings("ignore")
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18().eval()
x = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    y = m(x)
torch.onnx.export(m, x, d + "/resnet18.onnx", opset_version=13, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE)
np.save(d + "/x.npy", x.numpy())
np.save(d + "/y.npy", y.numpy())
EOF
check "PyTorch exports resnet18.onnx" "$py" "$tmp/export.py" "$tmp"

cat > "$tmp/check_inspect.py" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("format", "inputs", "outputs", "params", "param_bytes", "flops", "layers"):
    assert key in r, key
assert r["format"] == "onnx", r["format"]
assert r["params"] == 11689512, r["params"]
assert 3.5e9 < r["flops"] < 3.75e9, r["flops"]
assert r["inputs"][0]["shape"] == ["N", 3, 224, 224], r["inputs"]
assert r["outputs"][0]["name"] == "logits"
assert r["param_bytes"] == 4 * 11689512
assert any(l["op"] == "Conv" and l["params"] > 0 for l in r["layers"])
assert r["peak_activation_bytes"] > 3 * 224 * 224 * 4
print("params", r["params"], "GFLOPs", r["flops"] / 1e9)
EOF
check "inspect resnet18.onnx: 11,689,512 params, ~3.6 GFLOPs" bash -c "'$torsh' model inspect '$tmp/resnet18.onnx' --format json > '$tmp/inspect.json' && '$py' '$tmp/check_inspect.py' '$tmp/inspect.json'"
check "inspect table, --graph tree and --dot" bash -c "'$torsh' model inspect '$tmp/resnet18.onnx' --layers --graph --dot '$tmp/r.dot' | grep -q 'parameters *11.69 M' && head -1 '$tmp/r.dot' | grep -q digraph"

cat > "$tmp/compare.py" <<'EOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
d = float(np.abs(a - b).max())
print("max abs diff", d)
assert d <= 1e-4, d
EOF
check "run resnet18.onnx: outputs within 1e-4 of PyTorch" bash -c "'$torsh' model run '$tmp/resnet18.onnx' --input '$tmp/x.npy' --output '$tmp/out.npy' && '$py' '$tmp/compare.py' '$tmp/out.npy' '$tmp/y.npy'"
check "convert resnet18.onnx -> .torsh, same outputs" bash -c "'$torsh' model convert '$tmp/resnet18.onnx' '$tmp/r.torsh' && '$torsh' model run '$tmp/r.torsh' --input input='$tmp/x.npy' --output '$tmp/out2.npy' && '$py' '$tmp/compare.py' '$tmp/out2.npy' '$tmp/y.npy'"
check "run --bench reports a latency" bash -c "'$torsh' model run '$tmp/r.torsh' --batch 1 --bench --runs 3 --format json | grep -q median_ms"
check "export back to ONNX passes onnx.checker" bash -c "'$torsh' model convert '$tmp/r.torsh' '$tmp/r2.onnx' && '$py' -c 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))' '$tmp/r2.onnx' && '$torsh' model run '$tmp/r2.onnx' --input '$tmp/x.npy' --output '$tmp/out3.npy' && '$py' '$tmp/compare.py' '$tmp/out3.npy' '$tmp/y.npy'"

# ---- .pt state dicts through zoo architectures (and a Lua file) ---------------------------
cat > "$tmp/export_pt.py" <<'EOF2'
import sys, warnings, numpy as np, torch, torchvision
warnings.filterwarnings("ignore")
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.mobilenet_v2().eval()
for mod in m.modules():          # non-trivial BN statistics
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 1.5)
x = torch.randn(2, 3, 96, 96)
with torch.no_grad():
    np.save(d + "/mnv2_y.npy", m(x).numpy())
np.save(d + "/mnv2_x.npy", x.numpy())
torch.save(m.state_dict(), d + "/mnv2.pt")
enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True), 2).eval()
xs = torch.randn(3, 7, 32)
with torch.no_grad():
    np.save(d + "/enc_y.npy", enc(xs).numpy())
np.save(d + "/enc_x.npy", xs.numpy())
torch.save(enc.state_dict(), d + "/enc.pt")
EOF2
cat > "$tmp/encoder.lua" <<'EOF2'
-- the architecture of enc.pt: torch.nn.TransformerEncoder(TransformerEncoderLayer(32, 4, 64), 2)
local nn = torsh.nn
return nn.TransformerEncoder(function()
  return nn.TransformerEncoderLayer(32, 4, { dim_feedforward = 64, dropout = 0, batch_first = true })
end, 2)
EOF2
check "PyTorch saves MobileNetV2 and TransformerEncoder state dicts" "$py" "$tmp/export_pt.py" "$tmp"
check "mobilenet_v2 .pt through the zoo: outputs within 1e-4" bash -c "'$torsh' model run '$tmp/mnv2.pt' --arch mobilenet_v2 --shape 1,3,96,96 --input '$tmp/mnv2_x.npy' --output '$tmp/mnv2_out.npy' && '$py' '$tmp/compare.py' '$tmp/mnv2_out.npy' '$tmp/mnv2_y.npy'"
check "TransformerEncoder .pt through a Lua architecture file: outputs within 1e-4" bash -c "'$torsh' model run '$tmp/enc.pt' --arch '$tmp/encoder.lua' --shape 1,7,32 --input '$tmp/enc_x.npy' --output '$tmp/enc_out.npy' && '$py' '$tmp/compare.py' '$tmp/enc_out.npy' '$tmp/enc_y.npy'"

finish model_cli
