#!/usr/bin/env bash
# test_pt_save.sh BUILD — torsh writes PyTorch .pt state dicts (stdlib/torsh/pt.lua)
# and real PyTorch reads them back with torch.load(weights_only=True): key order,
# dtypes, shapes and exact bytes (CRC-32 of each tensor's row-major bytes, as
# torsh computes it) for every dtype, non-contiguous and 0-dim tensors, shared
# storages, >1000 keys, ZIP64 records; zipfile's CRC check; and the recipe CNN
# loaded with strict=True into the same torch.nn.Sequential, giving the same
# outputs. Skips when /usr/bin/python3 has no torch.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
torsh="$build/torsh"
py=/usr/bin/python3
py_has torch || skip_all pt_save "/usr/bin/python3 with torch is not available"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# torsh side: saves the .pt files and a reference line per tensor:
# key <tab> dtype <tab> shape <tab> crc32 <tab> numel <tab> sum (f64)
cat > "$tmp/save.lua" <<'EOF'
local pt = require "torsh.pt"
local dir = ...
local ref = assert(io.open(dir .. "/ref.tsv", "w"))
local function save(sd, keys, path, opts)
  opts = opts or {}
  opts.keys = keys
  pt.save_state_dict(sd, path, opts)
  for _, k in ipairs(keys) do
    local t = sd[k]
    ref:write(("%s\t%s\t%s\t%s\t%d\t%.17g\t%s\n"):format(path:match("[^/]*$"), k, t:dtype(),
      table.concat(t:shape(), ","), torsh._io.crc32(t), t:numel(), t:to("f64"):sum():item()))
  end
end

torsh.manual_seed(7)
local sd, keys = {}, {}
local function add(k, t) sd[k] = t; keys[#keys + 1] = k end
local r = torsh.randn(5, 7) * 3
for _, dt in ipairs { "f32", "f64", "f16", "bf16" } do add("float." .. dt, r:to(dt)) end
add("int.i8", torsh.arange(-128, 128):to("i8"))
add("int.u8", torsh.arange(0, 256):to("u8"))
add("int.i16", (torsh.arange(-300, 300) * 97):to("i16"))
add("int.i32", (torsh.arange(-50, 50) * 40000000):to("i32"))
add("int.i64", (torsh.arange(-20, 20) * 300000000000):to("i64"))
add("bool", (torsh.arange(0, 12) % 3):to("bool"))
add("transposed", torsh.arange(0, 12):reshape(3, 4):to("f32"):t())
add("sliced_i64", torsh.arange(0, 60):reshape(6, 10):narrow(2, 3, 4))
add("expanded", torsh.randn(3, 1):expand(3, 4))
add("scalar_f32", torsh.tensor(2.5))
add("scalar_i64", torsh.tensor(-7):to("i64"))
add("empty", torsh.zeros(0, 3))
add("rank5", torsh.randn(2, 1, 3, 1, 2))
add("tied_a", r); add("tied_b", r)                   -- one tensor, two keys: one storage
save(sd, keys, dir .. "/all.pt")

local net = torsh.nn.zoo.fashion_cnn()
net:eval()
save(net:state_dict(), net:state_dict_keys(), dir .. "/cnn.pt")
local x = torsh.randn(2, 1, 28, 28)
pt.save_state_dict({ x = x, y = net(x) }, dir .. "/io.pt", { keys = { "x", "y" } })

local many, mkeys = {}, {}
for i = 1, 1500 do mkeys[i] = ("k%04d"):format(1501 - i); many[mkeys[i]] = torsh.tensor(i):to("i32") end
save(many, mkeys, dir .. "/many.pt")
save({ w = r, v = torsh.arange(0, 100) }, { "w", "v" }, dir .. "/zip64.pt", { zip64_threshold = 100 })
ref:close()
EOF

t_save() { "$torsh" "$tmp/save.lua" "$tmp"; }
check "torsh saves .pt files" t_save

cat > "$tmp/check.py" <<'EOF'
import sys, zipfile, zlib, collections, torch
dir, name = sys.argv[1], sys.argv[2]
path = f"{dir}/{name}"
z = zipfile.ZipFile(path)
assert z.testzip() is None, "zip CRC mismatch"
for info in z.infolist():                             # 64-byte aligned data, as torch writes
    with open(path, "rb") as f:
        f.seek(info.header_offset + 28); extra_len = int.from_bytes(f.read(2), "little")
    assert (info.header_offset + 30 + len(info.filename.encode()) + extra_len) % 64 == 0, info.filename
sd = torch.load(path, weights_only=True)
assert isinstance(sd, collections.OrderedDict)
DT = dict(f32=torch.float32, f64=torch.float64, f16=torch.float16, bf16=torch.bfloat16, i8=torch.int8,
          u8=torch.uint8, i16=torch.int16, i32=torch.int32, i64=torch.int64, bool=torch.bool)
rows = [l.rstrip("\n").split("\t") for l in open(f"{dir}/ref.tsv")]
rows = [r[1:] for r in rows if r[0] == name]
assert list(sd.keys()) == [r[0] for r in rows], "key order"
for k, dt, shape, crc, numel, s in rows:
    t = sd[k]
    assert t.dtype == DT[dt], (k, t.dtype, dt)
    assert list(t.shape) == [int(x) for x in shape.split(",") if x], (k, t.shape, shape)
    assert t.is_contiguous() and not t.requires_grad, k
    b = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    assert zlib.crc32(b) == int(crc), (k, "bytes differ")
    assert t.numel() == int(numel), k
    got, want = t.double().sum().item(), float(s)
    tol = 0 if not t.is_floating_point() else 1e-9 * max(1.0, t.double().abs().sum().item())
    assert abs(got - want) <= tol, (k, got, want)
if name == "all.pt":
    assert sd["tied_a"].data_ptr() == sd["tied_b"].data_ptr(), "tied tensors share one storage"
    assert sd["int.i64"][0].item() == -20 * 300000000000
    assert sd["transposed"].tolist()[1] == [1.0, 5.0, 9.0]
    assert sd["scalar_f32"].dim() == 0 and sd["scalar_f32"].item() == 2.5
if name == "cnn.pt":
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    net.load_state_dict(sd, strict=True)
    net.eval()
    io = torch.load(f"{dir}/io.pt", weights_only=True)
    with torch.no_grad():
        y = net(io["x"])
    assert torch.allclose(y, io["y"], rtol=1e-4, atol=1e-5), (y - io["y"]).abs().max()
print("ok", name, len(sd))
EOF

for f in all.pt cnn.pt many.pt zip64.pt; do
  eval "t_load_${f%.pt}() { \"$py\" \"$tmp/check.py\" \"$tmp\" $f; }"
  check "torch.load(weights_only=True) reads $f exactly" "t_load_${f%.pt}"
done

t_dispatch() {
  "$torsh" -e "torsh.save({ b = torsh.ones(2), a = torsh.zeros(3):to('i64') }, '$tmp/d.pth')" || return 1
  "$py" -c "import torch; d = torch.load('$tmp/d.pth', weights_only=True); assert list(d) == ['a', 'b'] and d['a'].dtype == torch.int64, d"
}
check "torsh.save dispatches .pth to the .pt writer" t_dispatch

t_refuse() {
  "$torsh" -e "torsh.save({ model = { w = torsh.ones(2) } }, '$tmp/n.pt')" 2> "$tmp/err" && return 1
  grep -q "torsh.save: saving .pt supports state dicts (string -> tensor) only for now" "$tmp/err" || return 1
  "$torsh" -e "require('torsh.pt').save_state_dict({ w = torsh.ones(2) }, '$tmp/n.pt', { keys = { 'w', 'x' } })" 2> "$tmp/err" && return 1
  grep -q "not a key of the state dict" "$tmp/err" && ! ls "$tmp"/n.pt* 2>/dev/null
}
check "nested values and bad key lists are refused, nothing written" t_refuse

t_atomic() {
  printf 'old' > "$tmp/keep.pt"
  # the freed tensor is met after the temp file is created and w is written
  "$torsh" -e "local v = torsh.ones(2); v:free(); torsh.save({ w = torsh.ones(2), v = v }, '$tmp/keep.pt', { keys = { 'w', 'v' } })" 2> "$tmp/err" && return 1
  grep -q "tensor 'v' is freed" "$tmp/err" && [ "$(cat "$tmp/keep.pt")" = old ] && [ -z "$(ls "$tmp" | grep 'keep.pt.tmp')" ]
}
check "a failed save leaves the old file and no temp file" t_atomic

finish pt_save
