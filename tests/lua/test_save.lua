-- test_save.lua — torsh.save / torsh.load and the .torsh format: round trips
-- of every dtype and of Lua value trees, mmap views vs copies, corrupt and
-- hostile files (refused with messages naming the file and the tensor),
-- failed saves leaving the previous file intact, and an independent reader
-- (NumPy) agreeing with the layout. The kill -9 test is tests/sh/test_save_kill.sh.
local T = require "torsh.test"
local torsh = require "torsh"
local io_mod = require "torsh.io"

local tmpdir, tmp = T.tmpdir()

-- Builds a .torsh file by hand: fixed header fields can lie (opts).
local function craft(path, json, data, opts)
  opts = opts or {}
  local doff = (32 + #json + 63) // 64 * 64       -- where the data really starts
  local head = "TORSH\0\r\n" .. string.pack("<I2I2I4I8I8", opts.major or 1, opts.minor or 0, opts.flags or 0,
                                            opts.json_len or #json, opts.data_offset or doff)
  local body = head .. json
  body = body .. string.rep("\0", doff - #body) .. (data or "")
  T.write_file(path, body)
end

local DTYPES = { "f32", "f64", "f16", "bf16", "i8", "u8", "i16", "i32", "i64", "bool" }

local function sample(dt)
  if dt == "bool" then return torsh.tensor({ { true, false, true }, { false, false, true } }) end
  if dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16" then
    torsh.manual_seed(7)
    return torsh.randn(3, 5):to(dt)
  end
  return (torsh.arange(0, 12) * 37 - 100):reshape(3, 4):to(dt)
end

-- ---- round trips ------------------------------------------------------------------

T.case("every dtype round-trips bit for bit (mmap and copy)", function()
  local v = {}
  for _, dt in ipairs(DTYPES) do v[dt] = sample(dt) end
  torsh.save(v, tmp("dtypes.torsh"))
  for _, mmap in ipairs { true, false } do
    local r = torsh.load(tmp("dtypes.torsh"), { mmap = mmap })
    for _, dt in ipairs(DTYPES) do
      T.same_bytes(r[dt], v[dt], dt)
      T.close(r[dt], v[dt], 0, dt)
    end
  end
end)

T.case("special float values and extreme integers in tensors", function()
  local f = torsh.tensor({ 0 / 0, 1 / 0, -1 / 0, -0.0, 1e-45, 3.4e38 }, "f32")
  local d = torsh.tensor({ 5e-324, 1.7976931348623157e308, -0.0, 0 / 0 }, "f64")
  local i = torsh.tensor({ math.maxinteger, math.mininteger, 0, -1 }, "i64")
  torsh.save({ f = f, d = d, i = i }, tmp("special.torsh"))
  local r = torsh.load(tmp("special.torsh"))
  T.same_bytes(r.f, f); T.same_bytes(r.d, d); T.same_bytes(r.i, i)
  T.eq(r.i:totable()[1], math.maxinteger)
  T.eq(r.i:totable()[2], math.mininteger)
end)

T.case("0-dim and empty tensors", function()
  local v = { s = torsh.tensor(3.5), si = torsh.tensor(7, "i64"), e = torsh.zeros(0), e2 = torsh.zeros(2, 0, 3, "i16"),
              after = torsh.ones(5) }
  torsh.save(v, tmp("empty.torsh"))
  for _, mmap in ipairs { true, false } do
    local r = torsh.load(tmp("empty.torsh"), { mmap = mmap })
    T.eq(r.s:dim(), 0); T.eq(r.s:item(), 3.5)
    T.eq(r.si:item(), 7); T.eq(r.si:dtype(), "i64")
    T.eq(r.e:numel(), 0); T.eq(r.e:dim(), 1)
    T.same_bytes(r.e2, v.e2)
    T.close(r.after, { 1, 1, 1, 1, 1 })
  end
end)

T.case("non-contiguous tensors are saved contiguous", function()
  local base = torsh.arange(0, 24):reshape(2, 3, 4):to("f64")
  local v = { t = base:transpose(1, 3), s = base:slice(3, 1, 4, 2), x = torsh.tensor({ 1, 2, 3 }, "i32"):reshape(3, 1):expand(3, 4),
              n = base:select(2, 2) }
  T.ok(not v.t:is_contiguous() and not v.s:is_contiguous() and not v.x:is_contiguous())
  torsh.save(v, tmp("strided.torsh"))
  local r = torsh.load(tmp("strided.torsh"))
  for k, t in pairs(v) do
    T.ok(r[k]:is_contiguous(), k)
    T.close(r[k], t, 0, k)
    T.same_bytes(r[k], t, k)
  end
  local h = io_mod.header(tmp("strided.torsh"))
  local total = 0
  for _, e in ipairs(h.tensors) do total = total + e.nbytes; T.eq(e.offset % 64, 0) end
  T.eq(total, (4 * 3 * 2 + 2 * 3 * 2 + 2 * 4) * 8 + 3 * 4 * 4)
end)

T.case("a tensor referenced twice is stored once and loads as one object", function()
  local w = torsh.randn(4, 4)
  local v = { enc = { weight = w }, dec = { weight = w }, list = { w, w } }
  torsh.save(v, tmp("shared.torsh"))
  local h = io_mod.header(tmp("shared.torsh"))
  T.eq(#h.tensors, 1)
  local r = torsh.load(tmp("shared.torsh"))
  T.ok(rawequal(r.enc.weight, r.dec.weight) and rawequal(r.list[1], r.list[2]) and rawequal(r.list[1], r.enc.weight))
  T.close(r.enc.weight, w, 0)
  -- views of one storage are separate tensors (saved twice, no sharing)
  local v2 = { a = w, b = w:t() }
  torsh.save(v2, tmp("views.torsh"))
  T.eq(#io_mod.header(tmp("views.torsh")).tensors, 2)
end)

T.case("tensor names follow the key path", function()
  torsh.save({ model = { ["0.weight"] = torsh.ones(2), layers = { torsh.zeros(1) } } }, tmp("names.torsh"))
  local names = {}
  for _, e in ipairs(io_mod.header(tmp("names.torsh")).tensors) do names[e.name] = true end
  T.ok(names["model.0.weight"] and names["model.layers.1"])
  torsh.save(torsh.ones(3), tmp("root.torsh"))
  T.eq(io_mod.header(tmp("root.torsh")).tensors[1].name, "value")
  T.close(torsh.load(tmp("root.torsh")), { 1, 1, 1 })
end)

T.case("nested tables with mixed keys, numbers, strings, booleans", function()
  local v = {
    list = { 1, 2.5, "three", true, false },
    sparse = { [1] = "a", [3] = "c", [10] = "j" },
    mixed = { 10, 20, name = "x", [2.5] = "half", [true] = "yes", [-3] = "neg", [0] = "zero" },
    dollar = { ["$tensor"] = 1, ["$int"] = "no", plain = 1 },
    deep = { a = { b = { c = { d = { e = "deep" } } } } },
    empty = {},
    str = { unicode = "héllo ☃ 𝄞", ctrl = "a\0b\1c\n\t\"\\/", bin = "\xff\xfe\x00\x80", empty = "" },
    ints = { 0, -1, 2 ^ 53 // 1, 2 ^ 53 // 1 + 1, math.maxinteger, math.mininteger, -(2 ^ 53 // 1) - 1 },
    floats = { 0.1, -2.5e-300, 5e-324, 1.7976931348623157e308, 1.0, -0.0, 1e20, 2 ^ 53, 123456789.123456789, 1 / 3 },
    specials = { 0 / 0, 1 / 0, -1 / 0 },
  }
  torsh.save(v, tmp("tree.torsh"))
  local r = torsh.load(tmp("tree.torsh"))
  local function same(a, b, path)
    T.eq(type(a), type(b), path)
    if type(a) == "table" then
      for k, x in pairs(b) do same(a[k], x, path .. "." .. tostring(k)) end
      for k in pairs(a) do T.ok(b[k] ~= nil, path .. ": extra key " .. tostring(k)) end
    elseif type(a) == "number" then
      T.eq(math.type(a), math.type(b), path .. " (number type)")
      if b ~= b then T.ok(a ~= a, path .. " is NaN")
      else
        T.eq(a, b, path)
        T.eq(string.format("%q", a), string.format("%q", b), path .. " (exact, sign of zero)")
      end
    else
      T.eq(a, b, path)
    end
  end
  same(r, v, "value")
end)

T.case("metadata is stored and returned", function()
  local meta = { epoch = 3, lr = 3e-4, tags = { "a", "b" }, run = "x" }
  torsh.save({ w = torsh.ones(2) }, tmp("meta.torsh"), { metadata = meta })
  local _, m = torsh.load(tmp("meta.torsh"))
  T.eq(m.epoch, 3); T.eq(math.type(m.epoch), "integer"); T.eq(m.lr, 3e-4); T.eq(m.tags[2], "b"); T.eq(m.run, "x")
  local h, info = io_mod.header(tmp("meta.torsh"))
  T.eq(h.format, "torsh"); T.eq(h.version[1], 1); T.eq(h.metadata.run, "x")
  T.eq(info.major, 1); T.eq(info.minor, 0); T.eq(info.data_offset % 64, 0)
  local _, m2 = torsh.load(tmp("root.torsh"))
  T.eq(next(m2), nil)
  T.raises(function() torsh.save({}, tmp("m2.torsh"), { metadata = { t = torsh.ones(1) } }) end, "metadata cannot hold tensors")
end)

T.case("scalars and nil at the top level", function()
  for _, v in ipairs { 42, 2.5, "s", true } do
    torsh.save(v, tmp("scalar.torsh"))
    T.eq(torsh.load(tmp("scalar.torsh")), v)
  end
  torsh.save(nil, tmp("nil.torsh"))
  T.eq(torsh.load(tmp("nil.torsh")), nil)
end)

T.case("loaded tensors are read-only views; mmap=false gives writable copies", function()
  torsh.save({ w = torsh.ones(3) }, tmp("ro.torsh"))
  local r = torsh.load(tmp("ro.torsh"))
  T.raises(function() r.w:add_(1) end, "read-only")
  local c = r.w:clone()
  c:add_(1)
  T.close(c, { 2, 2, 2 })
  local r2 = torsh.load(tmp("ro.torsh"), { mmap = false })
  r2.w:add_(1)
  T.close(r2.w, { 2, 2, 2 })
end)

T.case("saving over a loaded file keeps the loaded tensors valid", function()
  torsh.save({ w = torsh.full({ 1000 }, 1.0) }, tmp("over.torsh"))
  local old = torsh.load(tmp("over.torsh"))
  torsh.save({ w = torsh.full({ 1000 }, 2.0) }, tmp("over.torsh"))
  T.eq(old.w:sum():item(), 1000.0)
  T.eq(torsh.load(tmp("over.torsh")).w:sum():item(), 2000.0)
end)

T.case("a symlinked checkpoint stays a symlink", function()
  torsh.save({ v = 1 }, tmp("real.torsh"))
  assert(os.execute("ln -sf real.torsh '" .. tmp("link.torsh") .. "'"))
  torsh.save({ v = 2 }, tmp("link.torsh"))
  T.eq(torsh.load(tmp("real.torsh")).v, 2)
  T.ok(os.execute("test -L '" .. tmp("link.torsh") .. "'"), "still a link")
end)

-- ---- failed saves -------------------------------------------------------------------

T.case("a save that fails leaves the previous file intact and no temp files", function()
  local path = tmp("keep/ckpt.torsh")
  assert(os.execute("mkdir -p '" .. tmp("keep") .. "'"))
  torsh.save({ good = torsh.arange(0, 10), n = 1 }, path)
  local before = T.read_file(path)
  T.raises(function() torsh.save({ f = print, w = torsh.ones(2) }, path) end, "cannot save a function (at value.f)")
  T.raises(function() torsh.save({ a = { b = coroutine.create(print) } }, path) end, "cannot save a thread (at value.a.b)")
  T.raises(function() torsh.save({ io.stdout }, path) end, "cannot save a userdata (at value[1])")
  local cyc = {}; cyc.self = cyc
  T.raises(function() torsh.save({ c = cyc }, path) end, "contains itself (at value.c.self)")
  T.raises(function() torsh.save({ [{}] = 1 }, path) end, "table key of type table")
  local freed = torsh.ones(2); freed:free()
  T.raises(function() torsh.save({ t = freed }, path) end, "freed tensor")
  T.raises(function() torsh.save({}, "") end, "non-empty")
  T.raises(function() torsh.save({}, path, "fast") end, "options must be a table")
  T.raises(function() torsh.save({}, path, { metadata = 5 }) end, "metadata must be a table")
  T.raises(function() torsh.save({ ["a.b"] = { print } }, path) end, 'cannot save a function (at value["a.b"][1])')
  local deep = {}
  local x = deep
  for _ = 1, 300 do x.n = {}; x = x.n end
  T.raises(function() torsh.save(deep, path) end, "nested deeper")
  T.eq(T.read_file(path), before)
  T.eq(#T.listdir(tmp("keep")), 1)
  T.eq(torsh.load(path).n, 1)
end)

T.case("a save into a missing folder or onto a folder fails cleanly", function()
  T.raises(function() torsh.save({ 1 }, tmp("no/such/dir/x.torsh")) end, "cannot create the temporary file")
  T.raises(function() torsh.save({ 1 }, tmpdir) end, "is a folder")
end)

T.case("a save into a read-only folder fails and keeps the old file", function()
  local p = io.popen("id -u"); local uid = p:read("l"); p:close()
  if uid == "0" then T.skip("running as root: folder permissions do not stop writes") end
  local dir = tmp("ro")
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  torsh.save({ v = 1 }, dir .. "/c.torsh")
  assert(os.execute("chmod 555 '" .. dir .. "'"))
  local ok, err = pcall(torsh.save, { v = 2 }, dir .. "/c.torsh")
  os.execute("chmod 755 '" .. dir .. "'")
  T.ok(not ok and err:find("Permission denied", 1, true), tostring(err))
  T.eq(torsh.load(dir .. "/c.torsh").v, 1)
end)

-- ---- corrupt and hostile files ---------------------------------------------------------

local function good_file(name)
  local path = tmp(name)
  torsh.save({ a = torsh.arange(0, 100):to("f32"), b = torsh.ones(50, "i64") }, path)
  return path, T.read_file(path)
end

T.case("a flipped data byte fails the checksum, naming the tensor", function()
  local path, bytes = good_file("flip.torsh")
  local doff = string.unpack("<I8", bytes, 25)
  local h = io_mod.header(path)
  local bpos
  for _, e in ipairs(h.tensors) do if e.name == "b" then bpos = doff + e.offset + 3 end end
  local flipped = bytes:sub(1, bpos) .. string.char(bytes:byte(bpos + 1) ~ 0x10) .. bytes:sub(bpos + 2)
  T.write_file(path, flipped)
  T.raises(function() torsh.load(path) end, "tensor 'b' fails its checksum")
  T.raises(function() torsh.load(path, { mmap = false }) end, "tensor 'b' fails its checksum")
  local err = T.raises(function() torsh.load(path) end, path)
  T.ok(err:find("corrupt", 1, true), err)
  local r = torsh.load(path, { verify = false })      -- the caller may opt out
  T.eq(r.a:numel(), 100)
end)

T.case("truncated files are refused", function()
  local path, bytes = good_file("trunc.torsh")
  local doff = string.unpack("<I8", bytes, 25)
  for _, cut in ipairs { 0, 5, 8, 20, 31, 32, 60, doff - 1, doff + 10, #bytes - 1 } do
    T.write_file(path, bytes:sub(1, cut))
    local err = T.raises(function() torsh.load(path) end, path)
    T.ok(err:find("truncated", 1, true) or err:find("not a torsh file", 1, true) or err:find("corrupt", 1, true),
         ("cut at %d: %s"):format(cut, err))
  end
  T.write_file(path, bytes:sub(1, #bytes - 1))
  T.raises(function() torsh.load(path) end, "tensor 'b' needs bytes")
  T.raises(function() torsh.load(tmp("missing.torsh")) end, "cannot open")
  T.raises(function() torsh.load(tmpdir) end, "not a regular file")
  T.raises(function() torsh.load(path, true) end, "options must be a table")
end)

T.case("bad magic, future versions and unknown flags are refused", function()
  local path, bytes = good_file("magic.torsh")
  T.write_file(path, "PK\3\4" .. bytes:sub(5))
  T.raises(function() torsh.load(path) end, "is not a torsh file (bad magic")
  T.write_file(path, bytes:sub(1, 8) .. string.pack("<I2I2", 2, 3) .. bytes:sub(13))
  T.raises(function() torsh.load(path) end, "was written by torsh format 2.3; this torsh reads 1.x")
  T.write_file(path, bytes:sub(1, 8) .. string.pack("<I2I2", 1, 7) .. bytes:sub(13))   -- newer minor: fine
  T.eq(torsh.load(path).a:numel(), 100)
  T.write_file(path, bytes:sub(1, 8) .. string.pack("<I2", 0) .. bytes:sub(11))
  T.raises(function() torsh.load(path) end, "unknown torsh format version 0.0")
  T.write_file(path, bytes:sub(1, 12) .. string.pack("<I4", 4) .. bytes:sub(17))
  T.raises(function() torsh.load(path) end, "format flags 0x4")
end)

T.case("lying lengths and offsets are refused without allocating", function()
  local path = tmp("lie.torsh")
  local json = '{"format":"torsh","version":[1,0],"tensors":[],"value":1}'
  craft(path, json, "", { json_len = 1 << 40 })
  T.raises(function() torsh.load(path) end, "JSON header claims 1099511627776 bytes")
  craft(path, json, "", { json_len = -1 })
  T.raises(function() torsh.load(path) end, "JSON header claims")
  craft(path, json, "", { data_offset = 1 << 50 })
  T.raises(function() torsh.load(path) end, "bad data section offset")
  craft(path, json, "", { data_offset = 96 + 1 })
  T.raises(function() torsh.load(path) end, "bad data section offset")
  craft(path, json, "", { data_offset = 32 })       -- overlaps the JSON header
  T.raises(function() torsh.load(path) end, "bad data section offset")
  craft(path, json, "")
  T.eq(torsh.load(path), 1)

  local function entry(fields) return '{"format":"torsh","tensors":[' .. fields .. '],"value":{"$tensor":0}}' end
  local live = torsh.memory().live
  craft(path, entry('{"name":"huge","dtype":"f32","shape":[1000000,1000000],"offset":0,"nbytes":4000000000000}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path, { mmap = false }) end, "truncated or corrupt: tensor 'huge' needs bytes [0, 4000000000000)")
  T.ok(torsh.memory().live - live < 1 << 20, "nothing big was allocated")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[4],"offset":0,"nbytes":20}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "tensor 'x': 20 bytes recorded, but its shape and dtype f32 need 16")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[4],"offset":8,"nbytes":16}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "offset 8 is not a multiple of 64")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[4],"offset":18446744073709551615,"nbytes":16}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "tensor 'x': field 'offset' must be an integer")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[4294967296,4294967296,4294967296],"offset":0,"nbytes":0}'), "")
  T.raises(function() torsh.load(path) end, "tensor 'x': shape is too large")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[-1],"offset":0,"nbytes":0}'), "")
  T.raises(function() torsh.load(path) end, "shape entry 1 is not a size")
  craft(path, entry('{"name":"x","dtype":"f33","shape":[1],"offset":0,"nbytes":4}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "tensor 'x': unknown dtype 'f33'")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[1,1,1,1,1,1,1,1,1],"offset":0,"nbytes":4}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "9 dims")
  craft(path, entry('{"name":"x","dtype":"f32","shape":[1],"offset":0,"nbytes":4,"crc32":5}'), string.rep("\0", 64))
  T.raises(function() torsh.load(path) end, "tensor 'x' fails its checksum")
  craft(path, '{"format":"torsh","tensors":[],"value":{"$tensor":0}}', "")
  T.raises(function() torsh.load(path) end, "tensor reference 0.0 is out of range")
  craft(path, '{"format":"torsh","tensors":[],"value":{"$evil":0}}', "")
  T.raises(function() torsh.load(path) end, "unknown tagged object")
  craft(path, '{"format":"torsh","tensors":[],"value":{"$int":"12x"}}', "")
  T.raises(function() torsh.load(path) end, "bad $int")
  craft(path, '{"format":"torsh","tensors":[],"value":{"$table":[[null,1]]}}', "")
  T.raises(function() torsh.load(path) end, "bad $table key")
  craft(path, '{"format":"torsh","tensors":[1],"value":1}', "")
  T.raises(function() torsh.load(path) end, "tensor table entry 1 is not an object")
  craft(path, '{"format":"torsh","tensors":[],"value":', "")
  T.raises(function() torsh.load(path) end, "the JSON header is corrupt")
  craft(path, '{"format":"torsh","tensors":[],"value":NaN}', "")
  T.raises(function() torsh.load(path) end, "the JSON header is corrupt")
  craft(path, '{"format":"other"}', "")
  T.raises(function() torsh.load(path) end, "not a torsh header")
  craft(path, string.rep("[", 5000) .. string.rep("]", 5000), "")
  T.raises(function() torsh.load(path) end, "the JSON header is corrupt")
end)

-- ---- an independent reader -----------------------------------------------------------

T.case("NumPy reads the file by the documented layout", function()
  local py = "/usr/bin/python3"
  if not os.execute(py .. " -c 'import numpy' 2>/dev/null") then T.skip("no NumPy for " .. py) end
  local v = { a = torsh.arange(0, 6):reshape(2, 3):to("f32"), b = torsh.tensor({ 1, -2, 3 }, "i16"),
              c = torsh.tensor({ 0.5, -1.5 }, "f16"), d = torsh.tensor({ true, false }), step = 5 }
  torsh.save(v, tmp("np.torsh"))
  local script = [==[
import json, struct, sys, zlib
import numpy as np
raw = open(sys.argv[1], "rb").read()
magic, major, minor, flags, jlen, doff = struct.unpack("<8sHHIQQ", raw[:32])
assert magic == b"TORSH\0\r\n" and (major, minor, flags) == (1, 0, 0) and doff % 64 == 0
h = json.loads(raw[32:32 + jlen].decode("utf-8"))
assert all(b == 0 for b in raw[32 + jlen:doff])
dt = {"f32": "<f4", "i16": "<i2", "f16": "<f2", "bool": "?"}
out = {}
for e in h["tensors"]:
    buf = raw[doff + e["offset"]: doff + e["offset"] + e["nbytes"]]
    assert zlib.crc32(buf) == e["crc32"]
    out[e["name"]] = np.frombuffer(buf, dtype=dt[e["dtype"]]).reshape(e["shape"]).tolist()
print(json.dumps([out["a"], out["b"], out["c"], out["d"], h["value"]["step"]]))
]==]
  T.write_file(tmp("read.py"), script)
  local p = io.popen(py .. " " .. tmp("read.py") .. " " .. tmp("np.torsh") .. " 2>&1")
  local got = p:read("a")
  p:close()
  T.eq(got, "[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], [1, -2, 3], [0.5, -1.5], [true, false], 5]\n")
end)

T.finish()
