-- test_safetensors.lua — torsh.safetensors (stdlib/torsh/safetensors.lua over
-- lua/l_safetensors.c and core/io/safetensors.c): round trips of every dtype,
-- metadata, file order, mmap zero-copy read-only views vs copies, lazy
-- access (open/get_tensor/info), and broken files refused with messages
-- naming the problem: truncated, lying header size, overlapping offsets,
-- wrong byte length, duplicate key, unknown dtype, header too big. Byte-level
-- agreement with Python is tests/sh/test_safetensors_interop.sh.
local T = require "torsh.test"
local torsh = require "torsh"
local st = torsh.safetensors

local tmpdir, tmp = T.tmpdir()

-- A file with a hand-written header; n overrides the length field.
local function craft(name, json, data, n)
  T.write_file(tmp(name), string.pack("<I8", n or #json) .. json .. (data or ""))
  return tmp(name)
end

local DTYPES = { "f32", "f64", "f16", "bf16", "i8", "u8", "i16", "i32", "i64", "bool" }

local function sample(dt)
  if dt == "bool" then return torsh.tensor({ { true, false, true }, { false, false, true } }) end
  torsh.manual_seed(11)
  if dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16" then return (torsh.randn(3, 5) * 100):to(dt) end
  local lo, hi = ({ i8 = -128, u8 = 0, i16 = -32768, i32 = -2 ^ 31, i64 = -2 ^ 62 })[dt], nil
  hi = ({ i8 = 127, u8 = 255, i16 = 32767, i32 = 2 ^ 31 - 1, i64 = 2 ^ 62 })[dt]
  return torsh.tensor({ lo, hi, 0, 1, -1 < lo and 2 or -1, 7 }, "f64"):to(dt):reshape(2, 3)
end

T.case("every dtype round-trips bit for bit (mmap and copy)", function()
  local sd = {}
  for _, dt in ipairs(DTYPES) do sd["t_" .. dt] = sample(dt) end
  sd.scalar = torsh.tensor(2.5)
  sd.empty = torsh.zeros(0, 3)
  sd.transposed = torsh.arange(0, 12):reshape(3, 4):to("f32"):t()     -- written row-major
  st.save(sd, tmp("all.safetensors"))
  for _, mmap in ipairs { true, false } do
    local got, meta, names = st.load(tmp("all.safetensors"), { mmap = mmap })
    T.eq(next(meta), nil, "no metadata")
    T.eq(#names, 13)
    for k, t in pairs(sd) do T.same_bytes(got[k], t:contiguous(), k .. (mmap and " mmap" or " copy")) end
    T.eq(got.scalar:dim(), 0)
    T.eq(got.transposed:get(1, 2), 4.0)
  end
end)

T.case("metadata and names: unicode, escapes, file order", function()
  local meta = { format = "pt", ["quote\"back\\slash"] = "line\nbreak\ttab", ["ключ"] = "значение 😀", empty = "" }
  local sd = { ["a.weight"] = torsh.ones(2), ["é/ü"] = torsh.zeros(1):to("i64"), ["b"] = torsh.ones(1):to("u8") }
  st.save(sd, tmp("meta.safetensors"), meta)
  local got, m, names = st.load(tmp("meta.safetensors"))
  for k, v in pairs(meta) do T.eq(m[k], v, k) end
  -- the reference writer's order: larger dtypes first, then by name
  T.eq(table.concat(names, "|"), "é/ü|a.weight|b")
  T.eq(got["é/ü"]:dtype(), "i64")
  -- the header is compact JSON starting with __metadata__, padded to 8
  local s = T.read_file(tmp("meta.safetensors"))
  local n = string.unpack("<I8", s)
  T.eq(n % 8, 0)
  T.ok(s:sub(9, 25) == '{"__metadata__":{', s:sub(9, 40))
  T.ok(s:sub(9, 8 + n):find('"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}', 1, true))
end)

T.case("list of pairs and an empty table", function()
  st.save({ { "x", torsh.ones(2) }, { "y", torsh.zeros(3) } }, tmp("pairs.safetensors"))
  local got = st.load(tmp("pairs.safetensors"))
  T.close(got.x, { 1, 1 })
  T.close(got.y, { 0, 0, 0 })
  st.save({}, tmp("none.safetensors"))
  T.eq(T.read_file(tmp("none.safetensors")), "\8\0\0\0\0\0\0\0{}      ")
  local none, m, names = st.load(tmp("none.safetensors"))
  T.eq(next(none), nil)
  T.eq(#names, 0)
  T.eq(next(m), nil)
end)

T.case("mmap loads are zero-copy read-only views; mmap=false copies", function()
  local big = torsh.randn(512, 512)                       -- 1 MiB
  st.save({ a = big, b = torsh.ones(4) }, tmp("zc.safetensors"))
  collectgarbage()
  local before = torsh.memory().live
  local v = st.load(tmp("zc.safetensors"))
  T.ok(torsh.memory().live - before < 65536, "mapping allocates no tensor memory")
  T.ok(v.a:shares_storage(v.b), "both are views of one mapping")
  -- a is first in the data: its first element sits right after 8 + header bytes
  local n = string.unpack("<I8", T.read_file(tmp("zc.safetensors")))
  T.eq(v.a:storage_offset(), (8 + n) // 4)
  T.raises(function() v.a:add_(1) end, "read-only")
  T.same_bytes(v.a, big)
  local c = st.load(tmp("zc.safetensors"), { mmap = false })
  T.ok(torsh.memory().live - before >= 512 * 512 * 4, "copies are heap tensors")
  T.ok(not c.a:shares_storage(c.b))
  c.a:add_(1)
  T.close(c.a, big + 1)
  -- views stay valid after the file is replaced
  st.save({ a = torsh.zeros(2) }, tmp("zc.safetensors"))
  T.same_bytes(v.a, big)
end)

T.case("lazy access: open, keys, info, get_tensor", function()
  st.save({ w = torsh.arange(0, 6):reshape(2, 3):to("bf16"), z = torsh.ones(1) }, tmp("lazy.safetensors"),
          { note = "x" })
  local f <close> = st.open(tmp("lazy.safetensors"))
  T.eq(table.concat(f:keys(), ","), "z,w")
  T.eq(f:metadata().note, "x")
  local i = f:info("w")
  T.eq(i.dtype, "BF16")
  T.eq(table.concat(i.shape, ","), "2,3")
  T.eq(i.data_offsets[1], 4)
  T.eq(i.data_offsets[2], 16)
  T.eq(f:info("missing"), nil)
  T.close(f:get_tensor("w"):to("f32"), { { 0, 1, 2 }, { 3, 4, 5 } })
  f:get_tensor("w", { mmap = false }):add_(1)
  T.raises(function() f:get_tensor("missing") end, "no tensor named 'missing'")
  f:close()
  T.raises(function() f:keys() end, "closed")
end)

T.case("dtypes torsh lacks: the file opens, those tensors are refused by name", function()
  local path = craft("u16.safetensors",
    '{"a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"I16","shape":[1],"data_offsets":[4,6]}}',
    "\1\0\2\0\3\0")
  local f = st.open(path)
  T.eq(f:info("a").dtype, "U16")
  T.close(f:get_tensor("b"), { 3 })
  T.raises(function() f:get_tensor("a") end, "tensor 'a' has dtype U16")
  f:close()
  T.raises(function() st.load(path) end, "tensor 'a' has dtype U16")
end)

-- ---- broken files -------------------------------------------------------------------

local function refused(path, pattern)
  T.raises(function() st.load(path) end, pattern)
  T.raises(function() st.open(path) end, pattern)
end

T.case("refused: truncated files", function()
  st.save({ w = torsh.ones(10) }, tmp("good.safetensors"))
  local s = T.read_file(tmp("good.safetensors"))
  T.write_file(tmp("cut.safetensors"), s:sub(1, #s - 1))
  refused(tmp("cut.safetensors"), "is truncated: the tensors need 40 bytes of data (up to 'w'), the file has 39")
  T.write_file(tmp("tiny.safetensors"), "\1\2\3")
  refused(tmp("tiny.safetensors"), "truncated: 3 bytes, the header length alone takes 8")
  T.write_file(tmp("zero.safetensors"), "")
  refused(tmp("zero.safetensors"), "truncated: 0 bytes")
  T.write_file(tmp("extra.safetensors"), s .. "xyz")
  refused(tmp("extra.safetensors"), "3 bytes after the last tensor are not covered by the header")
end)

T.case("refused: a header length that lies or is too big", function()
  refused(craft("lie.safetensors", "{}", "", 5000), "its header length says 5000 bytes, only 2 follow")
  refused(craft("huge.safetensors", "{}", "", 100000001), "header length 100000001 is over the limit of 100000000 bytes")
  refused(craft("short.safetensors", '{"a":1}', "", 3), "malformed header")
end)

T.case("refused: overlapping offsets and gaps", function()
  refused(craft("overlap.safetensors",
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    string.rep("\0", 12)), "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a' ([0, 8])")
  refused(craft("gap.safetensors",
    '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}',
    string.rep("\0", 5)), "gap in the data: tensor 'b' starts at byte 3, the previous tensor 'a' ends at 2")
  refused(craft("backwards.safetensors", '{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}', "\0\0"),
    "tensor 'a': data_offsets [2, 0] end before they begin")
end)

T.case("refused: a byte length that does not match dtype and shape", function()
  refused(craft("len.safetensors", '{"w":{"dtype":"F16","shape":[3,2],"data_offsets":[0,10]}}', string.rep("\0", 10)),
    "tensor 'w': data_offsets [0, 10] hold 10 bytes, but F16 [3, 2] needs 12")
  refused(craft("ovf.safetensors", '{"w":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}',
    string.rep("\0", 8)), "tensor 'w': the shape's element count overflows")
end)

T.case("refused: duplicate keys", function()
  refused(craft("dup.safetensors",
    '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', "\0\0"),
    "duplicate tensor name 'w'")
  refused(craft("dupfield.safetensors", '{"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', "\0"),
    "tensor 'w': duplicate field 'dtype'")
  refused(craft("dupmeta.safetensors", '{"__metadata__":{"k":"1","k":"2"}}'), "duplicate __metadata__ key 'k'")
end)

T.case("refused: unknown dtypes, naming the tensor", function()
  refused(craft("dtype.safetensors", '{"layer.0":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}}', "\0"),
    "tensor 'layer.0': unknown dtype 'Q4_K'")
  refused(craft("dtype2.safetensors", '{"w":{"dtype":7,"shape":[1],"data_offsets":[0,1]}}', "\0"), "expected a string")
end)

T.case("refused: malformed JSON and fields", function()
  refused(craft("j1.safetensors", '{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', "\0"), "fraction or exponent")
  refused(craft("j2.safetensors", '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}', "\0"),
    "tensor 'w': unknown field 'extra'")
  refused(craft("j3.safetensors", '{"w":{"dtype":"U8","shape":[1]}}', "\0"), "tensor 'w' has no 'data_offsets'")
  refused(craft("j4.safetensors", '{"__metadata__":{"n":1}}'), "__metadata__ value of 'n' is not a string")
  refused(craft("j5.safetensors", '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} {}', "\0"),
    "unexpected text after the header object")
  refused(craft("j6.safetensors", '[]'), "does not start with '{'")
  refused(craft("j7.safetensors", '{"\255":{}}'), "not valid UTF-8")
end)

T.case("save refuses bad input and keeps the old file", function()
  st.save({ w = torsh.ones(2) }, tmp("keep.safetensors"))
  local before = T.read_file(tmp("keep.safetensors"))
  T.raises(function() st.save({ __metadata__ = torsh.ones(1) }, tmp("keep.safetensors")) end, "__metadata__")
  T.raises(function() st.save({ w = 3 }, tmp("keep.safetensors")) end, "'w' is a number, not a tensor")
  T.raises(function() st.save({ w = torsh.ones(1) }, tmp("keep.safetensors"), { n = 1 }) end,
    "metadata value of 'n' must be a string")
  T.raises(function() st.save({ { "a", torsh.ones(1) }, { "a", torsh.ones(1) } }, tmp("keep.safetensors")) end,
    "duplicate tensor name 'a'")
  T.raises(function() st.save({ w = torsh.ones(1) }, tmp("nofolder/x.safetensors")) end, "cannot create the temporary file")
  T.raises(function() st.save({ w = torsh.ones(1) }, tmpdir) end, "is a folder")
  T.eq(T.read_file(tmp("keep.safetensors")), before)
  for _, name in ipairs(T.listdir(tmpdir)) do T.ok(not name:find(".tmp.", 1, true), "temp file left behind: " .. name) end
end)

T.finish()
