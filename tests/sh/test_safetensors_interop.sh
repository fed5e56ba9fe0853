#!/usr/bin/env bash
# test_safetensors_interop.sh BUILD — torsh's .safetensors and .npz/.npy files
# against NumPy (Debian's /usr/bin/python3):
#  - NumPy writes .npz (np.savez stored, np.savez_compressed deflate) with every
#    dtype, Fortran-ordered, big-endian, 0-dim and empty arrays; torsh reads them
#    and its values (CRC-32 of row-major LE bytes, dtype, shape) match NumPy's;
#  - torsh writes .npz / .npy; numpy.load reads them back exactly, and every
#    entry is byte-identical to what np.save writes for the same array;
#  - torsh writes .safetensors; Python parses the header JSON and the bytes with
#    numpy (values match), and the whole file is byte-identical to the
#    reference layout formatted by tests/fuzz/make_corpus_safetensors.py;
#  - files formatted in Python (any key order, no padding) load in torsh.
# Skips when /usr/bin/python3 has no numpy.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
root=$(pwd)
torsh="$build/torsh"
py=/usr/bin/python3
py_has numpy || skip_all safetensors_interop "/usr/bin/python3 with numpy is not available"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# ---- NumPy -> torsh (.npz) ----------------------------------------------------------

cat > "$tmp/np_write.py" <<'EOF'
import sys, zlib
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
a = {
    "f32": rng.standard_normal((3, 4)).astype("<f4"),
    "f64": rng.standard_normal((2, 5)),
    "f16": rng.standard_normal(7).astype("<f2"),
    "i8": np.arange(-128, 128, 9, dtype=np.int8),
    "u8": np.arange(0, 256, 11, dtype=np.uint8),
    "i16": (np.arange(-20, 20) * 1500).astype(np.int16),
    "i32": (np.arange(-5, 5) * 300000007).astype(np.int32),
    "i64": (np.arange(-4, 4) * 3000000000007).astype(np.int64),
    "bool": np.array([[True, False, True], [False, False, True]]),
    "fortran": np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
    "bigend": np.arange(6, dtype=">i4").reshape(2, 3) * -1000,
    "bigend_f8": np.linspace(-1, 1, 5).astype(">f8"),
    "scalar": np.float64(2.5) * np.ones(()),
    "empty": np.zeros((0, 3), np.int16),
}
np.savez(f"{d}/stored.npz", **a)
np.savez_compressed(f"{d}/compressed.npz", **a)
np.savez(f"{d}/positional.npz", a["f32"], a["i64"])     # keys arr_0, arr_1
with open(f"{d}/np_ref.tsv", "w") as f:
    for k, v in a.items():
        le = np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<"))
        dt = {"float32": "f32", "float64": "f64", "float16": "f16", "int8": "i8", "uint8": "u8", "int16": "i16",
              "int32": "i32", "int64": "i64", "bool": "bool"}[le.dtype.name]
        f.write("%s\t%s\t%s\t%d\n" % (k, dt, ",".join(map(str, v.shape)), zlib.crc32(le.tobytes())))
EOF

cat > "$tmp/torsh_read_npz.lua" <<'EOF'
local dir, name = ...
require "torsh.npz"
for _, mmap in ipairs { false, true } do
  local arrays, keys = torsh.load_npz(dir .. "/" .. name, { mmap = mmap })
  local n = 0
  for line in io.lines(dir .. "/np_ref.tsv") do
    local k, dt, shape, crc = line:match("^(.-)\t(.-)\t(.-)\t(.-)$")
    local t = assert(arrays[k], "missing " .. k)
    assert(t:dtype() == dt, k .. ": dtype " .. t:dtype() .. " vs " .. dt)
    assert(table.concat(t:shape(), ",") == shape, k .. ": shape")
    assert(torsh._io.crc32(t) == tonumber(crc), k .. ": bytes differ")
    n = n + 1
  end
  assert(#keys == n, "key count")
  assert(keys[1] == "f32" and keys[#keys] == "empty", "archive order")
end
local p = torsh.load_npz(dir .. "/positional.npz")
assert(p.arr_0 and p.arr_1 and p.arr_1:dtype() == "i64")
print("ok", name)
EOF

t_np_write() { "$py" "$tmp/np_write.py" "$tmp"; }
check "numpy writes .npz fixtures" t_np_write
t_read_stored() { "$torsh" "$tmp/torsh_read_npz.lua" "$tmp" stored.npz; }
check "torsh reads np.savez exactly (copies and mmap views)" t_read_stored
t_read_compressed() { "$torsh" "$tmp/torsh_read_npz.lua" "$tmp" compressed.npz; }
check "torsh reads np.savez_compressed exactly" t_read_compressed

# ---- torsh -> NumPy (.npz, .npy) ------------------------------------------------------

cat > "$tmp/torsh_write.lua" <<'EOF'
local dir = ...
require "torsh.npz"
local ref = assert(io.open(dir .. "/torsh_ref.tsv", "w"))
torsh.manual_seed(9)
local arrays = {}
local function add(k, t)
  arrays[k] = t
  ref:write(("%s\t%s\t%s\t%d\n"):format(k, t:dtype(), table.concat(t:shape(), ","), torsh._io.crc32(t)))
end
local r = torsh.randn(4, 6) * 10
for _, dt in ipairs { "f32", "f64", "f16" } do add("float_" .. dt, r:to(dt)) end
add("i8", torsh.arange(-128, 128):to("i8"))
add("u8", torsh.arange(0, 256):to("u8"))
add("i16", (torsh.arange(-300, 300) * 97):to("i16"))
add("i32", (torsh.arange(-50, 50) * 40000000):to("i32"))
add("i64", (torsh.arange(-20, 20) * 300000000000):to("i64"))
add("bool", (torsh.arange(0, 12) % 3):to("bool"):reshape(3, 4))
add("transposed", torsh.arange(0, 12):reshape(3, 4):to("f32"):t())
add("scalar", torsh.tensor(-7):to("i64"))
add("empty", torsh.zeros(0, 3))
add("rank8", torsh.randn(2, 1, 2, 1, 2, 1, 2, 1))
add("long_dim", torsh.zeros(123456789012, 0))
torsh.save_npz(dir .. "/torsh.npz", arrays)
torsh.save_npy(dir .. "/torsh.npy", arrays.transposed)
ref:close()

-- safetensors: every torsh dtype, metadata with escapes, names the writer must sort
local st = torsh.safetensors
local sd = { ["z.last"] = r:to("f32"), ["a.first"] = r:to("bf16"), ["m/mid"] = r:to("f64"),
             ints = torsh.arange(-6, 6):to("i32"), i64 = torsh.arange(0, 3):to("i64"), u8 = torsh.arange(0, 10):to("u8"),
             i8 = torsh.arange(-5, 5):to("i8"), i16 = torsh.arange(-5, 5):to("i16"), f16 = r:to("f16"),
             b = torsh.tensor({ true, false, true }), ["0dim"] = torsh.tensor(3.5), empty = torsh.zeros(0, 2):to("i64"),
             ["ünï\"code"] = torsh.ones(1) }
st.save(sd, dir .. "/torsh.safetensors", { format = "pt", ["quote\"nl\n"] = "tab\tbs\\é" })
local out = assert(io.open(dir .. "/st_ref.tsv", "w"))
for k, t in pairs(sd) do
  out:write(("%s\t%s\t%s\t%d\n"):format(k, t:dtype(), table.concat(t:shape(), ","), torsh._io.crc32(t)))
end
out:close()
EOF

cat > "$tmp/np_check.py" <<'EOF'
import io, sys, zipfile, zlib
import numpy as np
d = sys.argv[1]
DT = {"f32": "<f4", "f64": "<f8", "f16": "<f2", "i8": "|i1", "u8": "|u1", "i16": "<i2", "i32": "<i4", "i64": "<i8",
      "bool": "|b1"}
rows = [l.rstrip("\n").split("\t") for l in open(f"{d}/torsh_ref.tsv")]
z = np.load(f"{d}/torsh.npz")
assert sorted(z.files) == sorted(r[0] for r in rows), z.files
assert z.files == sorted(z.files), "a table's keys are written sorted"
for k, dt, shape, crc in rows:
    a = z[k]
    assert a.dtype == np.dtype(DT[dt]), (k, a.dtype, dt)
    assert list(a.shape) == [int(x) for x in shape.split(",") if x], (k, a.shape, shape)
    assert zlib.crc32(np.ascontiguousarray(a).tobytes()) == int(crc), (k, "values differ")
assert z["transposed"].tolist()[1] == [1.0, 5.0, 9.0]
assert z["i64"][0] == -20 * 300000000000 and z["scalar"].shape == ()
# every entry is byte-identical to np.save of the same array; the zip is sound
zf = zipfile.ZipFile(f"{d}/torsh.npz")
assert zf.testzip() is None
for info in zf.infolist():
    b = io.BytesIO()
    np.save(b, z[info.filename[:-4]])
    assert zf.read(info) == b.getvalue(), (info.filename, "differs from np.save")
b = io.BytesIO()
np.save(b, np.load(f"{d}/torsh.npy"))
assert open(f"{d}/torsh.npy", "rb").read() == b.getvalue(), "torsh.npy differs from np.save"
assert np.load(f"{d}/torsh.npy").tolist()[1] == [1.0, 5.0, 9.0]
print("ok", len(rows))
EOF

t_torsh_write() { "$torsh" "$tmp/torsh_write.lua" "$tmp"; }
check "torsh writes .npz, .npy and .safetensors" t_torsh_write
t_np_check() { "$py" "$tmp/np_check.py" "$tmp"; }
check "numpy.load reads torsh's .npz/.npy exactly, byte-identical to np.save" t_np_check

# ---- torsh -> Python (.safetensors) ---------------------------------------------------

cat > "$tmp/st_check.py" <<'EOF'
import json, struct, sys, zlib
import numpy as np
root, d = sys.argv[1], sys.argv[2]
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, root + "/tests/fuzz")
from make_corpus_safetensors import st_bytes
buf = open(f"{d}/torsh.safetensors", "rb").read()
n = struct.unpack("<Q", buf[:8])[0]
assert n % 8 == 0 and n <= len(buf) - 8
text = buf[8:8 + n].decode("utf-8")
hdr = json.loads(text)
assert text.rstrip(" ").endswith("}") and text.startswith('{"__metadata__":'), text[:40]
meta = hdr.pop("__metadata__")
assert meta == {"format": "pt", 'quote"nl\n': "tab\tbs\\é"}, meta
data = buf[8 + n:]
NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "I8": "i1", "U8": "u1", "I16": "<i2", "I32": "<i4",
      "I64": "<i8", "BOOL": "?"}
TDT = {"F32": "f32", "F64": "f64", "F16": "f16", "BF16": "bf16", "I8": "i8", "U8": "u8", "I16": "i16", "I32": "i32",
       "I64": "i64", "BOOL": "bool"}
ref = {r[0]: r[1:] for r in (l.rstrip("\n").split("\t") for l in open(f"{d}/st_ref.tsv", encoding="utf-8"))}
assert sorted(hdr) == sorted(ref), (sorted(hdr), sorted(ref))
arrays, end = {}, 0
for k, info in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"]):
    b, e = info["data_offsets"]
    assert b == end, (k, "not contiguous")
    end = e
    a = np.frombuffer(data[b:e], dtype=NP[info["dtype"]]).reshape(info["shape"])
    dt, shape, crc = ref[k]
    assert TDT[info["dtype"]] == dt and ",".join(map(str, a.shape)) == shape, (k, info)
    assert zlib.crc32(a.tobytes()) == int(crc), (k, "values differ")
    arrays[k] = a if info["dtype"] != "BF16" else ("BF16", list(a.shape), a.tobytes())
assert end == len(data), "the tensors cover the data section"
assert arrays["ints"].tolist() == list(range(-6, 6)) and arrays["0dim"].shape == () and arrays["0dim"] == 3.5
assert arrays["b"].tolist() == [True, False, True]
# byte-identical to the reference layout (order, compact JSON, padding)
want = st_bytes(arrays, meta)
assert buf == want, "differs from the reference layout:\n%r\n%r" % (buf[:200], want[:200])
# Python-formatted files, any key order, unpadded: torsh reads them (checked by the Lua side)
f32 = np.arange(6, dtype="<f4").reshape(2, 3)
h = json.dumps({"w": {"shape": [2, 3], "data_offsets": [0, 24], "dtype": "F32"}, "__metadata__": {"a": "b"}})
open(f"{d}/py.safetensors", "wb").write(struct.pack("<Q", len(h)) + h.encode() + f32.tobytes())
open(f"{d}/py2.safetensors", "wb").write(st_bytes({"x": np.array([1, -2], np.int64), "y": np.array(True)}, {"k": "v"}))
print("ok", len(hdr))
EOF

cat > "$tmp/st_read.lua" <<'EOF'
local dir = ...
local st = torsh.safetensors
local a, m = st.load(dir .. "/py.safetensors")
assert(m.a == "b" and a.w:get(2, 3) == 5 and a.w:dtype() == "f32")
local b, m2, names = st.load(dir .. "/py2.safetensors", { mmap = false })
assert(m2.k == "v" and b.x:get(2) == -2 and b.y:item() == true and names[1] == "x")
-- torsh re-reads its own file as written
local c = st.load(dir .. "/torsh.safetensors")
assert(c["0dim"]:item() == 3.5 and c["ünï\"code"]:item() == 1)
print("ok")
EOF

t_st_check() { "$py" "$tmp/st_check.py" "$root" "$tmp"; }
check "Python parses torsh's .safetensors (JSON + numpy bytes), byte-identical to the reference layout" t_st_check
t_st_read() { "$torsh" "$tmp/st_read.lua" "$tmp"; }
check "torsh reads .safetensors formatted by Python" t_st_read

finish safetensors_interop
