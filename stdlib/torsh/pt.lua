-- torsh/pt.lua — writes PyTorch `.pt` files (the zip format torch.save uses
-- since 1.6) holding a state dict, so that PyTorch can read them with
-- torch.load(path, weights_only=True). Writing only; layout in
-- the PyTorch section of the file-format notes: an uncompressed ZIP (64-byte aligned entries, "FB" padding
-- fields, data descriptors, ZIP64 end records) with entries
--   <archive>/data.pkl    pickle protocol 2: OrderedDict key -> _rebuild_tensor_v2(...)
--   <archive>/byteorder   "little"
--   <archive>/data/<n>    raw little-endian bytes of storage n (one per tensor)
--   <archive>/version     "3\n"
-- Uses torsh._io (lua/l_io.c) for CRC-32s, streaming tensor bytes and fsync.
--
--   local pt = require "torsh.pt"
--   pt.save_state_dict(model:state_dict(), "model.pt", { keys = model:state_dict_keys() })
--
-- The file appears atomically: it is written to a temp file in the same
-- folder, synced, and renamed over the target.
local torsh = require "torsh"
local C = torsh._io

local M = {}

local STORAGE = {
  f32 = "FloatStorage", f64 = "DoubleStorage", f16 = "HalfStorage", bf16 = "BFloat16Storage",
  i8 = "CharStorage", u8 = "ByteStorage", i16 = "ShortStorage", i32 = "IntStorage",
  i64 = "LongStorage", bool = "BoolStorage",
}

local ELEMENT_SIZE = { f32 = 4, f64 = 8, f16 = 2, bf16 = 2, i8 = 1, u8 = 1, i16 = 2, i32 = 4, i64 = 8, bool = 1 }

local ALIGN = 64
local U32_MAX = 0xFFFFFFFF

-- ---- pickle (protocol 2) ---------------------------------------------------------

local function p_int(v)
  if v >= 0 and v < 256 then return "K" .. string.char(v) end
  if v >= 0 and v < 65536 then return "M" .. string.pack("<I2", v) end
  if v >= -2147483648 and v <= 2147483647 then return "J" .. string.pack("<i4", v) end
  return "\x8a\x08" .. string.pack("<i8", v)          -- LONG1, 8-byte two's complement
end

local function p_str(s) return "X" .. string.pack("<s4", s) end   -- BINUNICODE

local function p_tuple(items)
  local n = #items
  if n == 0 then return ")" end
  local body = table.concat(items)
  if n <= 3 then return body .. string.char(0x84 + n) end          -- TUPLE1..3
  return "(" .. body .. "t"
end

local ORDERED_DICT = "ccollections\nOrderedDict\n)R"
local REBUILD = "ctorch._utils\n_rebuild_tensor_v2\n"

-- Contiguous strides (in elements) for a shape.
local function strides_of(shape)
  local st, acc = {}, 1
  for i = #shape, 1, -1 do st[i] = acc; acc = acc * shape[i] end
  return st
end

local function p_tensor(t, key)
  local shape = t:shape()
  local sizes, strides = {}, {}
  for i, s in ipairs(strides_of(shape)) do sizes[i] = p_int(shape[i]); strides[i] = p_int(s) end
  local pid = p_tuple { p_str("storage"), "ctorch\n" .. STORAGE[t:dtype()] .. "\n", p_str(key),
                        p_str("cpu"), p_int(t:numel()) } .. "Q"
  return REBUILD .. p_tuple { pid, p_int(0), p_tuple(sizes), p_tuple(strides), "\x89", ORDERED_DICT } .. "R"
end

-- The data.pkl bytes: OrderedDict of keys[i] -> tensor i (storage key storage_keys[i]).
local function pickle_state_dict(keys, sd, storage_keys)
  local out = { "\x80\x02", ORDERED_DICT }
  for b = 1, #keys, 1000 do                                -- SETITEMS batches of at most 1000
    local last = math.min(b + 999, #keys)
    out[#out + 1] = "("
    for i = b, last do
      out[#out + 1] = p_str(keys[i])
      out[#out + 1] = p_tensor(sd[keys[i]], storage_keys[i])
    end
    out[#out + 1] = "u"
  end
  out[#out + 1] = "."
  return table.concat(out)
end

-- ---- zip (stored, aligned, data descriptors, ZIP64 end records) -----------------

local function fail(msg) error(msg, 0) end

local function check(what, ok, err)
  if not ok then fail(("%s: %s"):format(what, tostring(err))) end
  return ok
end

-- A zip writer over an open file: entries are added one at a time (header,
-- data, descriptor); close() writes the central directory and end records.
-- zip64_at is the size/offset from which an entry gets ZIP64 fields
-- (0xFFFFFFFF by default; tests lower it).
local function zip_writer(f, name, zip64_at)
  local z = { f = f, pos = 0, entries = {}, zip64_at = zip64_at or U32_MAX }

  local function put(s)
    check("cannot write " .. name, f:write(s))
    z.pos = z.pos + #s
  end

  -- add(entry_name, size, writer): writer() writes exactly size bytes and returns their CRC-32.
  function z.add(ename, size, writer)
    local offset = z.pos
    local big = size >= z.zip64_at or offset >= z.zip64_at
    local z64 = big and string.pack("<I2I2I8I8", 1, 16, size, size) or ""
    local start = offset + 30 + #ename + #z64 + 4
    local pad = (ALIGN - start % ALIGN) % ALIGN
    local extra = z64 .. string.pack("<I2I2", 0x4246, pad) .. string.rep("Z", pad)
    local field = big and U32_MAX or 0
    put(string.pack("<I4I2I2I2I2I2I4I4I4I2I2", 0x04034b50, big and 45 or 0, 0x0808, 0, 0, 0,
                    0, field, field, #ename, #extra) .. ename .. extra)
    local crc = writer()
    z.pos = z.pos + size
    if big then put(string.pack("<I4I4I8I8", 0x08074b50, crc, size, size))
    else put(string.pack("<I4I4I4I4", 0x08074b50, crc, size, size)) end
    z.entries[#z.entries + 1] = { name = ename, offset = offset, size = size, crc = crc, big = big }
  end

  function z.add_string(ename, s)
    z.add(ename, #s, function()
      check("cannot write " .. name, f:write(s))
      return C.crc32(s)
    end)
  end

  function z.close()
    local cd_start = z.pos
    for _, e in ipairs(z.entries) do
      -- like miniz: a ZIP64 entry always moves both sizes to the extra field
      -- (miniz's reader range-checks a 32-bit offset of 0xFFFFFFFF otherwise)
      local off_big = e.offset >= z.zip64_at
      local z64 = {}
      if e.big then z64[#z64 + 1] = string.pack("<I8I8", e.size, e.size) end
      if off_big then z64[#z64 + 1] = string.pack("<I8", e.offset) end
      local extra = #z64 > 0 and string.pack("<I2s2", 1, table.concat(z64)) or ""
      local sz = e.big and U32_MAX or e.size
      put(string.pack("<I4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", 0x02014b50, 0, e.big and 45 or 0,
                      0x0808, 0, 0, 0, e.crc, sz, sz, #e.name, #extra, 0, 0, 0, 0,
                      off_big and U32_MAX or e.offset) .. e.name .. extra)
    end
    local n, cd_size, eocd64 = #z.entries, z.pos - cd_start, z.pos
    put(string.pack("<I4I8I2I2I4I4I8I8I8I8", 0x06064b50, 44, 0x031e, 0x002d, 0, 0, n, n, cd_size, cd_start))
    put(string.pack("<I4I4I8I4", 0x07064b50, 0, eocd64, 1))
    put(string.pack("<I4I2I2I2I2I4I4I2", 0x06054b50, 0, 0, math.min(n, 0xFFFF), math.min(n, 0xFFFF),
                    math.min(cd_size, U32_MAX), math.min(cd_start, U32_MAX), 0))
  end

  return z
end

-- ---- checks and the atomic save -----------------------------------------------------

-- The ordered key list: opts.keys (checked against sd) or sd's keys sorted.
local function ordered_keys(sd, keys)
  local n = 0
  for k, v in pairs(sd) do
    if type(k) ~= "string" or not torsh.is_tensor(v) then
      fail("saving .pt supports state dicts (string -> tensor) only for now; "
           .. ("key %s holds a %s"):format(tostring(k), torsh.is_tensor(v) and "tensor" or type(v)))
    end
    if not utf8.len(k) then fail(("key %q is not valid UTF-8"):format(k)) end
    n = n + 1
  end
  if keys == nil then
    keys = {}
    for k in pairs(sd) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end
  if type(keys) ~= "table" then fail("option 'keys' must be a list of the state dict's keys") end
  local seen = {}
  for i, k in ipairs(keys) do
    if sd[k] == nil then fail(("keys[%d] = %s is not a key of the state dict"):format(i, tostring(k))) end
    if seen[k] then fail(("key %s is listed twice in 'keys'"):format(k)) end
    seen[k] = true
  end
  if #keys ~= n then
    for k in pairs(sd) do if not seen[k] then fail(("key %s is missing from 'keys'"):format(k)) end end
  end
  return keys
end

local function check_tensor(k, t)
  if t:is_freed() then fail(("tensor '%s' is freed"):format(k)) end
  if t:device() ~= "cpu" then fail(("tensor '%s' is on %s; copy it to the CPU first"):format(k, t:device())) end
  if not STORAGE[t:dtype()] then fail(("tensor '%s' has dtype %s, which .pt saving does not support"):format(k, t:dtype())) end
end

-- The archive folder name: the file's base name without its extension.
local function archive_name(path)
  local base = path:match("([^/]*)$"):gsub("%.[^.]*$", "")
  if base == "" or not utf8.len(base) then base = "archive" end
  return base
end

local function write_archive(f, path, sd, keys, zip64_at)
  local storage_keys, tensors, key_of = {}, {}, {}
  for i, k in ipairs(keys) do
    local t = sd[k]
    check_tensor(k, t)
    if not key_of[t] then                               -- a tensor listed twice shares its storage
      tensors[#tensors + 1] = t
      key_of[t] = tostring(#tensors - 1)
    end
    storage_keys[i] = key_of[t]
  end
  local arc = archive_name(path)
  local z = zip_writer(f, path, zip64_at)
  z.add_string(arc .. "/data.pkl", pickle_state_dict(keys, sd, storage_keys))
  z.add_string(arc .. "/byteorder", "little")
  for i, t in ipairs(tensors) do
    local nbytes = t:numel() * ELEMENT_SIZE[t:dtype()]
    z.add(("%s/data/%d"):format(arc, i - 1), nbytes, function()
      local n, crc = C.write_tensor(f, t)
      if not n then fail(("cannot write %s: %s"):format(path, crc)) end
      assert(n == nbytes, "tensor byte count changed while writing")
      return crc
    end)
  end
  z.add_string(arc .. "/version", "3\n")
  z.close()
end

--- save_state_dict(sd, path [, {keys = ordered key list}]): writes sd (string
--- -> CPU tensor of any supported dtype and strides; 0-dim is fine) to path
--- as a PyTorch zip checkpoint, atomically. Without keys the entries are in
--- sorted key order. Raises with a message naming the problem.
function M.save_state_dict(sd, path, opts)
  if type(sd) ~= "table" or torsh.is_tensor(sd) then
    error("torsh.pt.save_state_dict: saving .pt supports state dicts (string -> tensor) only for now", 2)
  end
  if type(path) ~= "string" or path == "" then error("torsh.pt.save_state_dict: path must be a non-empty string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("torsh.pt.save_state_dict: options must be a table", 2) end
  opts = opts or {}
  local ok, keys = pcall(ordered_keys, sd, opts.keys)
  if not ok then error("torsh.pt.save_state_dict: " .. tostring(keys), 2) end
  local tmp = ("%s.tmp.%08x"):format(path, math.random(0, 0x7FFFFFFF))
  local f, err = io.open(tmp, "wb")
  if not f then error("torsh.pt.save_state_dict: cannot create " .. tostring(err), 2) end
  f:setvbuf("full", 1 << 16)
  local wrote, werr = pcall(function()
    write_archive(f, path, sd, keys, opts.zip64_threshold)
    check("cannot sync " .. tmp, C.fsync(f))
  end)
  local closed, cerr = f:close()
  if wrote and not closed then wrote, werr = false, "cannot close " .. tmp .. ": " .. tostring(cerr) end
  if wrote then
    local renamed, rerr = os.rename(tmp, path)
    if not renamed then wrote, werr = false, rerr end
  end
  if not wrote then
    os.remove(tmp)
    error("torsh.pt.save_state_dict: " .. tostring(werr), 2)
  end
  C.fsync(path:match("^(.*)/[^/]*$") or ".")           -- make the rename durable (best effort)
end

return M
