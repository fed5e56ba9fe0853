-- test_npz.lua — torsh.load_npz / torsh.save_npz / torsh.save_npy
-- (stdlib/torsh/npz.lua over lua/l_npz.c, core/io/npz.c, npy_mem.c,
-- npy_write.c and the zip layer): round trips of every dtype NumPy has,
-- key order, mmap zero-copy read-only views vs copies, archives built here
-- byte by byte (big-endian and Fortran-ordered arrays, bool bytes, v2.0
-- headers), and broken archives refused with messages naming the entry and
-- the problem. Agreement with NumPy itself is tests/sh/test_safetensors_interop.sh.
local T = require "torsh.test"
local torsh = require "torsh"
require "torsh.npz"

local tmpdir, tmp = T.tmpdir()

local crc32 = torsh._io.crc32
-- .npy bytes with a hand-written header (format 1.0 unless v2), padded to 64.
local function npy(descr, fortran, shape, data, v2)
  local dict = ("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"):format(descr, fortran and "True" or "False", shape)
  local pre = v2 and 12 or 10
  local pad = (64 - (pre + #dict + 1) % 64) % 64
  local text = dict .. string.rep(" ", pad) .. "\n"
  return "\x93NUMPY" .. (v2 and ("\2\0" .. string.pack("<I4", #text)) or ("\1\0" .. string.pack("<I2", #text))) .. text .. data
end

-- A stored zip of {name, bytes} entries (no data descriptors), as Python's zipfile writes.
local function zip(entries, opts)
  opts = opts or {}
  local out, central = {}, {}
  local pos = 0
  for _, e in ipairs(entries) do
    local name, data = e[1], e[2]
    local crc = opts.bad_crc and 12345 or crc32(data)
    local head = string.pack("<I4I2I2I2I2I2I4I4I4I2I2", 0x04034b50, 20, 0, 0, 0, 0, crc, #data, #data, #name, 0) .. name
    central[#central + 1] = string.pack("<I4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", 0x02014b50, 20, 20, 0, 0, 0, 0, crc,
                                        #data, #data, #name, 0, 0, 0, 0, 0, pos) .. name
    out[#out + 1] = head .. data
    pos = pos + #head + #data
  end
  local cd = table.concat(central)
  local eocd = string.pack("<I4I2I2I2I2I4I4I2", 0x06054b50, 0, 0, #entries, #entries, #cd, pos, 0)
  return table.concat(out) .. cd .. eocd
end

local DTYPES = { "f32", "f64", "f16", "i8", "u8", "i16", "i32", "i64", "bool" }

local function sample(dt)
  if dt == "bool" then return torsh.tensor({ { true, false, true }, { false, false, true } }) end
  torsh.manual_seed(5)
  if dt:sub(1, 1) == "f" then return (torsh.randn(4, 3) * 50):to(dt) end
  return (torsh.arange(-6, 6) * 37):to(dt):reshape(3, 4)
end

T.case("every NumPy dtype round-trips bit for bit", function()
  local arrays = {}
  for _, dt in ipairs(DTYPES) do arrays[dt] = sample(dt) end
  arrays.scalar = torsh.tensor(-1.25, "f64")
  arrays.empty = torsh.zeros(0, 4):to("i32")
  arrays.strided = torsh.arange(0, 20):reshape(4, 5):t():narrow(1, 2, 3)
  arrays["nested/name"] = torsh.ones(2)
  torsh.save_npz(tmp("all.npz"), arrays)
  for _, mmap in ipairs { false, true } do
    local got, keys = torsh.load_npz(tmp("all.npz"), { mmap = mmap })
    T.eq(#keys, 13)
    for k, t in pairs(arrays) do T.same_bytes(got[k], t:contiguous(), k) end
    T.eq(got.scalar:dim(), 0)
  end
  -- a table's keys are written sorted; pairs keep their order
  local _, keys = torsh.load_npz(tmp("all.npz"))
  T.eq(keys[1], "bool")
  T.eq(keys[#keys], "u8")
  torsh.save_npz(tmp("pairs.npz"), { { "z", torsh.ones(1) }, { "a", torsh.zeros(1) } })
  _, keys = torsh.load_npz(tmp("pairs.npz"))
  T.eq(table.concat(keys, ","), "z,a")
end)

T.case("bf16 is refused (NumPy has no such dtype)", function()
  T.raises(function() torsh.save_npz(tmp("bf.npz"), { w = torsh.ones(2):to("bf16") }) end,
    "tensor 'w': npy write: NumPy has no bf16 dtype; convert the tensor (to f32) first")
  T.raises(function() torsh.save_npy(tmp("bf.npy"), torsh.ones(2):to("bf16")) end, "NumPy has no bf16 dtype")
end)

T.case("mmap: zero-copy read-only views; default: writable copies", function()
  local big = torsh.randn(256, 1024)                    -- 1 MiB
  torsh.save_npz(tmp("zc.npz"), { a = big, b = torsh.arange(0, 5) })
  collectgarbage()
  local before = torsh.memory().live
  local v = torsh.load_npz(tmp("zc.npz"), { mmap = true })
  T.ok(torsh.memory().live - before < 65536, "mapping allocates no tensor memory")
  T.ok(v.a:shares_storage(v.b) == false, "each entry is its own view")
  T.raises(function() v.a:add_(1) end, "read-only")
  T.eq(v.a:storage_offset() * 4 % 64, 0)                -- the array data is 64-byte aligned
  T.same_bytes(v.a, big)
  local c = torsh.load_npz(tmp("zc.npz"))
  T.ok(torsh.memory().live - before >= 256 * 1024 * 4)
  c.a:add_(1)
  T.close(c.a, big + 1)
  -- replacing the file leaves the views valid
  torsh.save_npz(tmp("zc.npz"), { a = torsh.zeros(1) })
  T.same_bytes(v.a, big)
end)

T.case("save_npy writes numpy's header; data.npy_read reads it back", function()
  local x = torsh.arange(0, 6):reshape(2, 3):to("f32")
  torsh.save_npy(tmp("x.npy"), x)
  local s = T.read_file(tmp("x.npy"))
  T.eq(#s, 128 + 24)
  T.eq(s:sub(1, 10), "\x93NUMPY\1\0v\0")
  local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
  T.eq(s:sub(11, 10 + #dict), dict)
  T.eq(s:sub(11 + #dict, 127), string.rep(" ", 127 - 10 - #dict))
  T.eq(s:sub(128, 128), "\n")
  T.same_bytes(torsh.data.npy_read(tmp("x.npy")), x)
  torsh.save_npy(tmp("s.npy"), torsh.tensor(true))
  T.ok(T.read_file(tmp("s.npy")):find("'descr': '|b1', 'fortran_order': False, 'shape': (), }", 1, true))
  torsh.save_npy(tmp("v.npy"), torsh.arange(0, 5):to("i16"))
  T.ok(T.read_file(tmp("v.npy")):find("'shape': (5,), }", 1, true))
  T.same_bytes(torsh.data.npy_read(tmp("v.npy")), torsh.arange(0, 5):to("i16"))
end)

T.case("hand-made archives: big-endian, Fortran order, bool bytes, v2.0 headers", function()
  local be = npy(">i4", false, "(3,)", string.pack(">i4>i4>i4", 1, -2, 70000))
  local fo = npy("<f8", true, "(2, 3)", string.pack("<dddddd", 1, 4, 2, 5, 3, 6))
  local bo = npy("|b1", false, "(4,)", "\0\1\2\255")
  local v2 = npy("<i2", false, "(2,)", string.pack("<i2<i2", 7, -7), true)
  T.write_file(tmp("hand.npz"), zip { { "be.npy", be }, { "fo.npy", fo }, { "bo.npy", bo }, { "v2.npy", v2 },
                                     { "raw", npy("|u1", false, "()", "\9") } })
  for _, mmap in ipairs { false, true } do
    local got, keys = torsh.load_npz(tmp("hand.npz"), { mmap = mmap })
    T.eq(table.concat(keys, ","), "be,fo,bo,v2,raw")
    T.close(got.be, { 1, -2, 70000 })
    T.close(got.fo, { { 1, 2, 3 }, { 4, 5, 6 } })
    T.eq(got.fo:is_contiguous(), true)
    local bo = {}
    for i, b in ipairs(got.bo:totable()) do bo[i] = tostring(b) end
    T.eq(table.concat(bo, ","), "false,true,true,true")
    T.close(got.v2, { 7, -7 })
    T.eq(got.raw:item(), 9)
  end
end)

T.case("refused: broken archives, naming the entry and the problem", function()
  T.raises(function() torsh.load_npz(tmp("missing.npz")) end, "cannot open")
  T.write_file(tmp("notzip.npz"), "hello, this is not a zip file at all")
  T.raises(function() torsh.load_npz(tmp("notzip.npz")) end, "torsh.load_npz: zip:")
  local good = zip { { "a.npy", npy("<f4", false, "(2,)", string.pack("<ff", 1, 2)) } }
  T.write_file(tmp("cut.npz"), good:sub(1, #good - 10))
  T.raises(function() torsh.load_npz(tmp("cut.npz")) end, "torsh.load_npz: zip:")
  T.write_file(tmp("short.npz"), zip { { "a.npy", npy("<f4", false, "(3,)", string.pack("<ff", 1, 2)) } })
  T.raises(function() torsh.load_npz(tmp("short.npz")) end, "a.npy: truncated: shape [3] of <f4 needs 12 bytes of data, there are 8")
  T.write_file(tmp("long.npz"), zip { { "a.npy", npy("<f4", false, "(1,)", string.pack("<ff", 1, 2)) } })
  T.raises(function() torsh.load_npz(tmp("long.npz")) end, "a.npy: size mismatch")
  T.write_file(tmp("text.npz"), zip { { "notes.txt", "just text" } })
  T.raises(function() torsh.load_npz(tmp("text.npz")) end, "notes.txt: not a .npy array")
  T.write_file(tmp("dup.npz"), zip { { "a", npy("|u1", false, "()", "\1") }, { "a.npy", npy("|u1", false, "()", "\1") } })
  T.raises(function() torsh.load_npz(tmp("dup.npz")) end, "two entries share the key 'a'")
  T.write_file(tmp("obj.npz"), zip { { "o.npy", npy("|O", false, "(1,)", "\128\2") } })
  T.raises(function() torsh.load_npz(tmp("obj.npz")) end, "o.npy: dtype '|O' is not supported")
  T.write_file(tmp("crc.npz"), zip({ { "a.npy", npy("|u1", false, "(1,)", "\1") } }, { bad_crc = true }))
  T.raises(function() torsh.load_npz(tmp("crc.npz")) end, "entry 'a.npy' fails its checksum")
  T.eq(torsh.load_npz(tmp("crc.npz"), { verify = false }).a:item(), 1)
  T.write_file(tmp("hdr.npz"), zip { { "h.npy", "\x93NUMPY\1\0\255\255{'descr'" } })
  T.raises(function() torsh.load_npz(tmp("hdr.npz")) end, "h.npy: truncated: the header needs 65535 bytes")
end)

T.case("save refuses bad input and keeps the old file", function()
  torsh.save_npz(tmp("keep.npz"), { a = torsh.ones(2) })
  local before = T.read_file(tmp("keep.npz"))
  T.raises(function() torsh.save_npz(tmp("keep.npz"), { a = "x" }) end, "'a' is a string, not a tensor")
  T.raises(function() torsh.save_npz(tmp("keep.npz"), { { "a", torsh.ones(1) }, { "a", torsh.ones(1) } }) end,
    "duplicate name 'a'")
  T.raises(function() torsh.save_npz(tmp("keep.npz"), { ["../up"] = torsh.ones(1) }) end, "zip")
  T.raises(function() torsh.save_npz(tmp("keep.npz"), { a = torsh.ones(1), b = torsh.ones(1):to("bf16") }) end, "bf16")
  T.raises(function() torsh.save_npz(tmp("nofolder/x.npz"), { a = torsh.ones(1) }) end, "torsh.save_npz")
  T.eq(T.read_file(tmp("keep.npz")), before)
  for _, name in ipairs(T.listdir(tmpdir)) do T.ok(not name:find(".tmp.", 1, true), "temp file left behind: " .. name) end
end)

T.finish()
