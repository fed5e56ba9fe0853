#!/usr/bin/env bash
# test_pt_interop.sh BUILD — PyTorch checkpoints both ways with real torch:
# a torchvision ResNet-18 state dict saved by torch.save (seeded, ~45 MB)
# loads with torsh.load into torsh.nn.zoo.resnet18 (strict) and gives
# PyTorch's output (max abs diff <= 1e-4); the load time of both is printed
# (one run each, not a benchmark). Then torsh writes that state dict back as
# .pt, with torsh.save (stdlib/torsh/pt.lua) and with the C writer
# (torsh._pt.save), and torch.load(weights_only=True) finds the same keys in
# the same order and the same bytes, in 64-byte-aligned zip entries whose
# CRCs check. Also: torch's own weights_only loader refuses the hostile
# pickles torsh refuses. Skips when /usr/bin/python3 lacks torch/torchvision.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
torsh="$build/torsh"
py=/usr/bin/python3
py_has torch torchvision || skip_all pt_interop "/usr/bin/python3 with torch and torchvision is not available"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/make.py" <<'EOF'
import sys, time, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18().eval()
with torch.no_grad():                     # non-trivial BatchNorm statistics, so eval mode is exercised
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.1, 0.1)
torch.save(model.state_dict(), out + "/resnet18.pt")
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = model(x)
torch.save({"x": x, "y": y}, out + "/io.pt")
t0 = time.perf_counter()
sd = torch.load(out + "/resnet18.pt")
t1 = time.perf_counter()
sd = torch.load(out + "/resnet18.pt", weights_only=True)
t2 = time.perf_counter()
print("torch.load: %.1f ms (weights_only=True: %.1f ms)" % ((t1 - t0) * 1e3, (t2 - t1) * 1e3))
EOF

t_make() { set -o pipefail; "$py" "$tmp/make.py" "$tmp" | tee "$tmp/times.txt"; }
check "torch saves a seeded torchvision resnet18 state dict" t_make

t_resnet() {
  "$torsh" -e "
    local nn = require 'torsh.nn'
    local t0 = torsh.clock()
    local sd, info = torsh.load('$tmp/resnet18.pt')
    local t1 = torsh.clock()
    local sd2 = torsh.load('$tmp/resnet18.pt', { verify = false })
    local t2 = torsh.clock()
    local sd3 = torsh.load('$tmp/resnet18.pt', { mmap = false })
    local t3 = torsh.clock()
    print(string.format('torsh.load: %.1f ms (verify=false: %.1f ms, mmap=false: %.1f ms), %d tensors',
      (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, #info.keys))
    assert(info.keys[1] == 'conv1.weight' and info.keys[#info.keys] == 'fc.bias', 'key order')
    local model = nn.zoo.resnet18()
    model:load_state_dict(sd)                     -- strict
    model:eval()
    local io = torsh.load('$tmp/io.pt')
    local y = torsh.no_grad(function() return model(io.x) end)
    local diff = (y - io.y):abs():amax():item()
    print(string.format('resnet18: max abs difference %.3g', diff))
    assert(diff <= 1e-4, 'outputs differ by ' .. diff)
    -- write it back: the Lua writer (torsh.save) and the C writer, keys in the file's order
    torsh.save(sd, '$tmp/lua.pt', { keys = info.keys })
    local ts = {}
    for i, k in ipairs(info.keys) do ts[i] = sd[k] end
    torsh._pt.save('$tmp/c.pt', info.keys, ts)
  "
}
t_resnet_logged() { set -o pipefail; t_resnet | tee -a "$tmp/times.txt"; }
check "torsh.load resnet18.pt -> zoo.resnet18 gives PyTorch's output (<= 1e-4)" t_resnet_logged
sed 's/^/  /' "$tmp/times.txt"

cat > "$tmp/check.py" <<'EOF'
import sys, zipfile, torch
ref = torch.load(sys.argv[1] + "/resnet18.pt", weights_only=True)
path = sys.argv[2]
z = zipfile.ZipFile(path)
assert z.testzip() is None, "zip CRC mismatch"
with open(path, "rb") as f:
    raw = f.read()
for info in z.infolist():
    extra = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    assert (info.header_offset + 30 + len(info.filename.encode()) + extra) % 64 == 0, info.filename
sd = torch.load(path, weights_only=True)
assert list(sd.keys()) == list(ref.keys()), "key order"
for k, v in ref.items():
    assert sd[k].dtype == v.dtype and sd[k].shape == v.shape, k
    assert torch.equal(sd[k], v), k
print("ok", path, len(sd))
EOF
t_back_lua() { "$py" "$tmp/check.py" "$tmp" "$tmp/lua.pt"; }
check "torch.load(weights_only=True) reads torsh.save's .pt: same keys, order, bytes" t_back_lua
t_back_c() { "$py" "$tmp/check.py" "$tmp" "$tmp/c.pt"; }
check "torch.load(weights_only=True) reads torsh._pt.save's .pt: same keys, order, bytes" t_back_c

t_torch_refuses() {
  "$py" - <<'EOF'
import glob, torch
n = 0
for f in sorted(glob.glob("tests/fixtures/pt/hostile/*pickle*") + glob.glob("tests/fixtures/pt/hostile/*system*") +
                glob.glob("tests/fixtures/pt/hostile/exec*") + glob.glob("tests/fixtures/pt/hostile/eval*")):
    try:
        torch.load(f, weights_only=True)
    except Exception:
        n += 1
        continue
    raise SystemExit("torch loaded " + f)
assert n >= 4, n
print("torch refuses", n)
EOF
}
check "torch's weights_only loader refuses the forbidden-global fixtures too" t_torch_refuses

t_survive() {
  # every hostile file in one torsh process: each a clean error, never a crash
  "$torsh" -e "
    local n = 0
    for f in io.popen('ls tests/fixtures/pt/hostile'):lines() do
      local ok = pcall(torsh.load, 'tests/fixtures/pt/hostile/' .. f)
      assert(not ok, f .. ' loaded')
      n = n + 1
    end
    assert(n >= 40, n)
    print('refused', n)
  "
}
check "torsh.load refuses every hostile fixture in one process" t_survive

finish pt_interop
