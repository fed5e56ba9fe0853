-- test_pt_load.lua — reading PyTorch checkpoints (torsh._pt, lua/l_pt.c, and
-- torsh.load on .pt files): every value of the fixtures made by real
-- torch.save (tests/fixtures/gen_pt.py -> tests/fixtures/pt/, expected values
-- in tests/fixtures/pt_ref.lua) including dtypes, views with their strides
-- and offsets, shared storages, Parameters, the legacy format, deflated and
-- big-endian archives; key order; mapped (read-only) vs copied tensors;
-- plain pickles of protocols 2-5; the C writer round trip; and every hostile
-- file refused with its expected message while the process carries on.
local T = require "torsh.test"
local torsh = require "torsh"
require "torsh.io"
local P = torsh._pt

local REF = dofile("tests/fixtures/pt_ref.lua")
local DIR = "tests/fixtures/pt/"

local _, tmp = T.tmpdir()

-- ---- comparing a loaded value with its expected tree --------------------------------

local compare

local function compare_tensor(got, want, where)
  T.ok(torsh.is_tensor(got), where .. ": expected a tensor, got " .. type(got))
  T.eq(got:dtype(), want.dtype, where .. " dtype")
  T.eq(table.concat(got:shape(), ","), table.concat(want.shape, ","), where .. " shape")
  T.eq(table.concat(got:stride(), ","), table.concat(want.stride, ","), where .. " stride")
  T.eq(got:storage_offset(), want.offset, where .. " storage offset")
  if #want.data > 0 then T.close(got:reshape(-1), want.data, 0, where .. " values") end
end

function compare(got, want, where)
  local k = want.kind
  if k == "tensor" then return compare_tensor(got, want, where) end
  if k == "none" then return T.eq(got, nil, where) end
  if k == "bool" or k == "str" or k == "bytes" then return T.eq(got, want.value, where) end
  if k == "int" then
    T.eq(math.type(got), "integer", where .. " is an integer")
    return T.eq(got, want.value, where)
  end
  if k == "float" then
    T.eq(math.type(got), "float", where .. " is a float")
    return T.eq(got, want.value, where)
  end
  T.eq(type(got), "table", where)
  T.eq(P.kind(got), k, where .. " kind")
  if k == "list" or k == "tuple" then
    T.eq(#got, want.n, where .. " length")
    for i = 1, want.n do compare(got[i], want.items[i], where .. "[" .. i .. "]") end
    return
  end
  -- dicts: same keys in the same order, same values
  local keys = P.keys(got)
  T.eq(#keys, #want.keys, where .. " key count")
  for i, key in ipairs(want.keys) do
    T.eq(keys[i], key, where .. " key " .. i)
    compare(got[key], want.vals[key], where .. "[" .. tostring(key) .. "]")
  end
  local i, order = 0, {}
  for key in pairs(got) do i = i + 1; order[i] = key end
  local present = {}
  for _, key in ipairs(want.keys) do if want.vals[key].kind ~= "none" then present[#present + 1] = key end end
  T.eq(table.concat(order, "|"), table.concat(present, "|"), where .. ": pairs() follows the file's order")
end

-- "['model']['w']" / "['list'][0]" (0-based like Python) -> the value
local function at(v, path)
  for seg in path:gmatch("%[(.-)%]") do
    local s = seg:match("^'(.*)'$")
    if s then v = v[s] else v = v[tonumber(seg) + 1] end
  end
  return v
end

for _, case in ipairs(REF.good) do
  T.case("loads " .. case.file .. " with every value as torch saved it", function()
    local v, kind = P.load(DIR .. case.file)
    T.eq(kind, case.file == "legacy.pt" and "legacy" or "zip")
    compare(v, case.value, case.file)
    for _, pair in ipairs(case.shares) do
      T.ok(at(v, pair[1]):shares_storage(at(v, pair[2])), case.file .. ": " .. pair[1] .. " and " .. pair[2] .. " share a storage")
    end
    for _, pair in ipairs(case.distinct) do
      T.ok(not at(v, pair[1]):shares_storage(at(v, pair[2])), case.file .. ": " .. pair[1] .. " and " .. pair[2] .. " do not share")
    end
  end)
end

T.case("mmap: tensors are read-only views; mmap = false gives writable copies", function()
  local sd = P.load(DIR .. "dtypes.pt")
  T.raises(function() sd["float.f32"]:fill_(1) end, "read-only")
  local copy = P.load(DIR .. "dtypes.pt", { mmap = false })
  copy["float.f32"]:fill_(1)
  T.eq(copy["float.f32"]:sum():item(), 12.0)
  -- copies are made whenever bytes cannot be used in place: deflate, big-endian, legacy
  for _, f in ipairs { "deflate.pt", "bigendian.pt", "legacy.pt" } do
    local v = P.load(DIR .. f)
    local _, t = next(v)
    t:fill_(0)
    T.eq(t:abs():sum():item(), 0.0, f)
  end
end)

T.case("mapped tensors outlive everything else that came from the file", function()
  local keep
  do
    local sd = P.load(DIR .. "views.pt")
    keep = sd.step
  end
  collectgarbage(); collectgarbage()
  T.close(keep, { { 0, 2, 4 }, { 6, 8, 10 }, { 12, 14, 16 }, { 18, 20, 22 } }, 0)
  T.ok(not keep:is_contiguous(), "a stepped slice stays a view")
end)

T.case("state dict metadata and Parameters: loads into torsh.nn modules", function()
  local v = P.load(DIR .. "param.pt")
  local lin = v.linear
  T.eq(P.kind(lin), "OrderedDict")
  local meta = getmetatable(lin).__state
  T.eq(type(meta), "table", "the state_dict's BUILD state (_metadata) is kept")
  T.ok(meta._metadata ~= nil, "_metadata")
  local m = torsh.nn.Linear(3, 2)
  m:load_state_dict(lin)               -- strict: pairs() sees exactly weight and bias
  T.close(m.weight, lin.weight, 0)
  T.close(m.bias, lin.bias, 0)
end)

T.case("torsh.load reads .pt by its magic, not its extension", function()
  local path = tmp("checkpoint.bin")
  local src = assert(io.open(DIR .. "nested.pt", "rb")):read("a")
  local f = assert(io.open(path, "wb")); f:write(src); f:close()
  local v, info = torsh.load(path)
  T.eq(info.format, "pt")
  T.eq(info.container, "zip")
  T.eq(v.step, 1200)
  T.eq(table.concat(info.keys, ","), table.concat(P.keys(v), ","))
  local lv, linfo = torsh.load(DIR .. "legacy.pt", { mmap = false, verify = false })
  T.eq(linfo.container, "legacy")
  T.eq(table.concat(P.keys(lv), ","), "w,i,h,v")
  T.raises(function() torsh.load(DIR .. "hostile/os_system.pt") end, "torsh.load: pt: ")
end)

T.case("ordered pairs: keys added after loading come after the file's keys; removed keys are skipped", function()
  local sd = P.load(DIR .. "dtypes.pt")
  sd["float.f64"] = nil
  sd.added = 1
  local seen = {}
  for k in pairs(sd) do seen[#seen + 1] = k end
  T.eq(seen[1], "float.f32")
  T.eq(seen[2], "float.f16")
  T.eq(seen[#seen], "added")
  T.eq(#seen, 12)
end)

-- ---- plain pickles -------------------------------------------------------------------------

for _, case in ipairs(REF.pickles) do
  T.case("unpickles a Python pickle of " .. case.name, function()
    compare(P.unpickle(case.bytes), case.value, case.name)
  end)
end

T.case("unpickle: shared and self-referencing values, big ints, sets, duplicate keys", function()
  local l = P.unpickle("\x80\x02]q\x00h\x00a.")        -- a list containing itself
  T.ok(rawequal(l[1], l), "the list is its own first item")
  local t = P.unpickle("\x80\x02]q\x00h\x00h\x00\x86.")  -- one list twice in a tuple
  T.ok(rawequal(t[1], t[2]), "a memo'd value is one Lua value")
  local big = P.unpickle("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.")   -- 2^64
  T.eq(math.type(big), "float"); T.eq(big, 2.0 ^ 64)
  local neg = P.unpickle("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff.")   -- -2^64
  T.eq(neg, -(2.0 ^ 64))
  local s = P.unpickle("\x80\x04\x8f(K\x01K\x02\x90.")   -- EMPTY_SET, ADDITEMS
  T.eq(P.kind(s), "set"); T.eq(#s, 2)
  local d = P.unpickle("\x80\x02}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bK\x02X\x01\x00\x00\x00aK\x03u.")
  T.eq(d.a, 3, "the last value wins"); T.eq(table.concat(P.keys(d), ","), "a,b", "the first position stays")
  local holes = P.unpickle("\x80\x02](K\x01NK\x03e.")  -- [1, None, 3]
  T.eq(#holes, 3, "# counts the None"); T.eq(holes[2], nil); T.eq(holes[3], 3)
  local g = P.unpickle("\x80\x02ctorch\nfloat16\n.")
  T.eq(P.kind(g), "global"); T.eq(g.global, "torch.float16")
end)

-- ---- the C writer ------------------------------------------------------------------------------

T.case("torsh._pt.save writes a state dict torsh reads back exactly, sharing what was shared", function()
  local r = torsh.randn(3, 4)
  local names = { "w", "w_t", "i", "h", "tied", "scalar" }
  local ts = { r, r:t(), torsh.arange(0, 10):to("i64"), r:to("f16"), r, torsh.tensor(2.5) }
  P.save(tmp("c.pt"), names, ts)
  local v = P.load(tmp("c.pt"))
  T.eq(table.concat(P.keys(v), ","), table.concat(names, ","))
  for i, n in ipairs(names) do
    T.eq(v[n]:dtype(), ts[i]:dtype(), n)
    T.close(v[n], ts[i], 0, n)
    T.ok(v[n]:is_contiguous(), n .. " is written contiguous")
  end
  T.ok(v.w:shares_storage(v.tied), "one tensor under two names is one storage")
  T.ok(not v.w:shares_storage(v.w_t), "a view is written as its own storage")
  P.save(tmp("z.pt"), { "a", "b" }, { r, torsh.ones(3) }, 100)     -- ZIP64 fields from 100 bytes on
  T.close(P.load(tmp("z.pt")).a, r, 0)
  T.raises(function() P.save(tmp("bad.pt"), { "a", "a" }, { r, r }) end, "key 'a' is given twice")
  T.ok(not io.open(tmp("bad.pt")), "nothing is written on failure")
end)

T.case("torsh.save to .pt (stdlib pt.lua) and back through torsh.load", function()
  local sd = { ["layer.weight"] = torsh.randn(4, 3), ["layer.bias"] = torsh.zeros(4):to("f64") }
  torsh.save(sd, tmp("s.pt"), { keys = { "layer.weight", "layer.bias" } })
  local back = torsh.load(tmp("s.pt"))
  T.eq(table.concat(P.keys(back), ","), "layer.weight,layer.bias")
  T.close(back["layer.weight"], sd["layer.weight"], 0)
  T.eq(back["layer.bias"]:dtype(), "f64")
end)

-- ---- refused and hostile files -------------------------------------------------------------------

for _, case in ipairs(REF.refused) do
  T.case("refuses " .. case.file .. " with a clear message", function()
    T.raises(function() P.load(DIR .. case.file) end, case.message)
  end)
end

T.case("every hostile file is refused with its message, and the process carries on", function()
  local failures = {}
  for _, case in ipairs(REF.hostile) do
    local ok, err = pcall(P.load, DIR .. "hostile/" .. case.file)
    if ok then failures[#failures + 1] = case.file .. ": loaded"
    elseif not tostring(err):find(case.message, 1, true) then
      failures[#failures + 1] = case.file .. ": '" .. tostring(err) .. "' lacks '" .. case.message .. "'"
    elseif not tostring(err):find(case.file, 1, true) then
      failures[#failures + 1] = case.file .. ": the message does not name the file: " .. tostring(err)
    end
  end
  T.eq(#failures, 0, table.concat(failures, "\n"))
  T.ok(#REF.hostile >= 40, "all hostile cases ran")
end)

T.case("the pickle error names the global and the offset", function()
  T.raises(function() P.unpickle("\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.") end,
           "pickle: global 'os.system' is not allowed (offset 2)")
  T.raises(function() P.unpickle("\x80\x04\x8c\x08builtins\x8c\x04eval\x93.") end,
           "pickle: global 'builtins.eval' is not allowed (offset 18)")
  T.raises(function() P.unpickle("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.") end, "needs a checkpoint reader")
  T.raises(function() P.unpickle("\x80\x02N.junk") end, "4 bytes follow the STOP opcode")
end)

T.finish()
