-- torsh/io.lua — torsh.save and torsh.load: a Lua value (nested tables of
-- numbers, strings, booleans and tensors) to and from a native .torsh file
-- (docs/FORMAT_TORSH.md). The C half (torsh._io, lua/l_io.c) lays out,
-- checksums and writes the tensor bytes atomically and maps them back; this
-- file turns the value tree into the JSON header and back (decoding with
-- lua-cjson, encoding by hand so numbers round-trip exactly).
--
--   require "torsh.io"                 -- defines torsh.save / torsh.load
--   torsh.save({ model = sd, step = 1200, lr = 3e-4 }, "ckpt.torsh", { metadata = { run = "a" } })
--   local ckpt, meta = torsh.load("ckpt.torsh")          -- verify = true, mmap = true
--
-- Loaded tensors are read-only views of a mapping of the file (writing one
-- raises the core's read-only error: clone() it first); {mmap = false}
-- copies them into ordinary memory. Saving replaces the file by rename, so a
-- crash or kill during a save leaves the previous file intact, and tensors
-- loaded from the old file stay valid.
local torsh = require "torsh"
local C = torsh._io

local M = {}

local json = require("cjson").new()   -- a private instance: our settings stay ours
json.decode_invalid_numbers(false)    -- no NaN/Infinity/hex literals in headers
json.decode_max_depth(1000)

local MAX_DEPTH = 200                 -- nesting of saved tables (3 JSON levels each at most)
local TWO53 = 2 ^ 53
local NULL = json.null

-- ---- encoding: Lua values -> JSON text ----------------------------------------

local ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function escape_char(c) return ESCAPES[c] or string.format("\\u%04x", c:byte()) end
local function quote(s) return '"' .. s:gsub('[%c"\\]', escape_char) .. '"' end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 1, 4 do
      local d = (n >> (6 * (4 - k))) & 63
      q[k] = B64:sub(d + 1, d + 1)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local B64_VALUE = {}
for i = 1, 64 do B64_VALUE[B64:byte(i)] = i - 1 end
local function unbase64(s)
  if #s % 4 ~= 0 or s:find("[^%w+/=]") then return nil end
  local out = {}
  for i = 1, #s, 4 do
    local n, pad = 0, 0
    for k = 0, 3 do
      local ch = s:byte(i + k)
      local d = B64_VALUE[ch]
      if ch == 61 then pad = pad + 1; d = 0 elseif pad > 0 or not d then return nil end
      n = n * 64 + d
    end
    local bytes = string.char(n >> 16, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return table.concat(out)
end

-- Shortest decimal text that reads back as exactly x (finite).
local function float_text(x)
  local s
  for _, f in ipairs { "%.15g", "%.16g", "%.17g" } do
    s = f:format(x)
    if tonumber(s) == x then break end
  end
  return s
end

-- Integers within +-2^53 are plain JSON integers; floats that are not
-- integral are plain JSON numbers with a '.' or exponent. Everything else
-- (big integers, integral floats, NaN, infinities) is tagged, so the type
-- and the exact value survive a decoder that reads numbers as doubles.
local function encode_number(x)
  if math.type(x) == "integer" then
    if x >= -TWO53 and x <= TWO53 then return string.format("%d", x) end
    return string.format('{"$int":"%d"}', x)
  end
  if x ~= x then return '{"$float":"nan"}' end
  if x == math.huge then return '{"$float":"inf"}' end
  if x == -math.huge then return '{"$float":"-inf"}' end
  local s = float_text(x)
  if x ~= math.floor(x) then return s end
  if not s:find("[.eE]") then s = s .. ".0" end
  return '{"$float":"' .. s .. '"}'
end

local function encode_string(s)
  if utf8.len(s) then return quote(s) end
  return '{"$bytes":"' .. base64(s) .. '"}'
end

local function path_text(path)
  local parts = { "value" }
  for i = 1, #path do
    local k = path[i]
    if type(k) == "string" then
      parts[#parts + 1] = k:match("^[%a_][%w_]*$") and ("." .. k) or ("[%q]"):format(k)
    else
      parts[#parts + 1] = "[" .. tostring(k) .. "]"
    end
  end
  return table.concat(parts)
end

local function tensor_name(path)
  if #path == 0 then return "value" end
  local parts = {}
  for i = 1, #path do parts[i] = tostring(path[i]) end
  return table.concat(parts, ".")
end

local KEY_RANK = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return KEY_RANK[ta] < KEY_RANK[tb] end
  if ta == "boolean" then return not a and b end
  return a < b
end

local encode_value

-- True when the keys of t are exactly 1..n (count keys in all).
local function is_sequence(t, count)
  local n = rawlen(t)
  if n ~= count then return false end
  for i = 1, n do if rawget(t, i) == nil then return false end end
  return true
end

-- Sorted keys of t and whether they are all strings not starting with '$'.
local function table_keys(t, path)
  local keys, plain = {}, true
  for k in next, t do
    local tk = type(k)
    if not KEY_RANK[tk] then error(("cannot save a table key of type %s (at %s)"):format(tk, path_text(path)), 0) end
    if tk ~= "string" or k:byte(1) == 36 then plain = false end   -- 36 is '$'
    keys[#keys + 1] = k
  end
  table.sort(keys, key_less)
  return keys, plain
end

-- Lua table -> JSON: [..] for a sequence 1..n, {..} for string keys (sorted),
-- {"$table":[[k,v],...]} for anything else (sparse, mixed, number keys).
local function encode_table(t, ctx, path, depth)
  if ctx.active[t] then error(("cannot save a table that contains itself (at %s)"):format(path_text(path)), 0) end
  if depth > MAX_DEPTH then error(("value is nested deeper than %d tables (at %s)"):format(MAX_DEPTH, path_text(path)), 0) end
  ctx.active[t] = true
  local keys, plain = table_keys(t, path)
  local parts = {}
  for i, k in ipairs(keys) do
    path[#path + 1] = k
    parts[i] = encode_value(rawget(t, k), ctx, path, depth + 1)
    path[#path] = nil
  end
  local out
  if #keys == 0 then
    out = "{}"
  elseif is_sequence(t, #keys) then
    out = "[" .. table.concat(parts, ",") .. "]"        -- sorted integer keys: already in order
  elseif plain then
    for i, k in ipairs(keys) do parts[i] = quote(k) .. ":" .. parts[i] end
    out = "{" .. table.concat(parts, ",") .. "}"
  else
    for i, k in ipairs(keys) do parts[i] = "[" .. encode_value(k, ctx, path, depth + 1) .. "," .. parts[i] .. "]" end
    out = '{"$table":[' .. table.concat(parts, ",") .. "]}"
  end
  ctx.active[t] = nil
  return out
end

local function encode_tensor(t, ctx, path)
  if not ctx.tensors then error(("metadata cannot hold tensors (at %s)"):format(path_text(path)), 0) end
  if t:is_freed() then error(("cannot save a freed tensor (at %s)"):format(path_text(path)), 0) end
  if t:device() ~= "cpu" then
    error(("the tensor at %s is on %s; copy it to the CPU first"):format(path_text(path), t:device()), 0)
  end
  local i = ctx.index[t]
  if not i then
    local list = ctx.tensors
    list[#list + 1] = t
    i = #list - 1
    ctx.index[t] = i
    local name = tensor_name(path)
    if ctx.names[name] then
      local k = 2
      while ctx.names[name .. "#" .. k] do k = k + 1 end
      name = name .. "#" .. k
    end
    ctx.names[name] = true
    ctx.tensor_names[#list] = name
  end
  return '{"$tensor":' .. i .. "}"
end

function encode_value(v, ctx, path, depth)
  local tv = type(v)
  if tv == "number" then return encode_number(v)
  elseif tv == "string" then return encode_string(v)
  elseif tv == "boolean" then return v and "true" or "false"
  elseif tv == "nil" then return "null"
  elseif torsh.is_tensor(v) then return encode_tensor(v, ctx, path)
  elseif tv == "table" then return encode_table(v, ctx, path, depth)
  end
  error(("cannot save a %s (at %s)"):format(tv, path_text(path)), 0)
end

local function tensor_row(t, name, e)
  local shape = t:shape()
  for i = 1, #shape do shape[i] = string.format("%d", shape[i]) end
  return string.format('{"name":%s,"dtype":"%s","shape":[%s],"offset":%d,"nbytes":%d,"crc32":%d}',
                       encode_string(name), t:dtype(), table.concat(shape, ","), e.offset, e.nbytes, e.crc32)
end

--- torsh.save(value, path [, {metadata = table}]): writes value to path as a
--- .torsh file, atomically. Tensors (any dtype, any strides; a tensor met
--- twice is stored once) must be on the CPU; tables keep integer vs float
--- numbers, big integers, NaN/inf, binary strings and any mix of keys.
--- Functions, coroutines, other userdata and cyclic tables are refused
--- before anything is written. Metatables are not saved. A path ending in
--- .pt or .pth writes a PyTorch checkpoint instead (torsh.pt: a flat state
--- dict of string -> tensor only; opts.keys orders it).
function torsh.save(value, path, opts)
  if type(path) ~= "string" or path == "" then error("torsh.save: path must be a non-empty string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("torsh.save: options must be a table", 2) end
  opts = opts or {}
  if path:find("%.pth?$") then     -- PyTorch checkpoint: stdlib/torsh/pt.lua ({keys = order} is honoured)
    local ok, err = pcall(require("torsh.pt").save_state_dict, value, path, opts)
    if not ok then error("torsh.save: " .. tostring(err):gsub("^torsh%.pt%.save_state_dict: ", ""), 2) end
    return
  end
  local ctx = { active = {}, index = {}, tensors = {}, names = {}, tensor_names = {} }
  local ok, value_json = pcall(encode_value, value, ctx, {}, 0)
  if not ok then error("torsh.save: " .. tostring(value_json), 2) end
  local meta_json = "{}"
  if opts.metadata ~= nil then
    if type(opts.metadata) ~= "table" then error("torsh.save: metadata must be a table", 2) end
    local mctx = { active = {}, index = {}, names = {} }
    ok, meta_json = pcall(encode_value, opts.metadata, mctx, {}, 0)
    if not ok then error("torsh.save: " .. tostring(meta_json), 2) end
  end
  local planned, plan = pcall(C.plan, ctx.tensors)
  if not planned then error("torsh.save: " .. tostring(plan), 2) end
  local rows = {}
  for i, t in ipairs(ctx.tensors) do rows[i] = tensor_row(t, ctx.tensor_names[i], plan[i]) end
  local header = table.concat {
    '{"format":"torsh","version":[1,0],"producer":', quote("torsh " .. torsh.version),
    ',\n"metadata":', meta_json,
    ',\n"tensors":[', #rows > 0 and ("\n" .. table.concat(rows, ",\n")) or "", "]",
    ',\n"value":', value_json, "}\n",
  }
  local done, err = C.write(path, header, ctx.tensors)
  if not done then error("torsh.save: " .. err, 2) end
end

-- ---- decoding: JSON header -> Lua values --------------------------------------

local decode_value

local TAGS = {
  ["$tensor"] = function(x, ctx)
    local i = math.type(x) == "float" and x == math.floor(x) and math.tointeger(x) or nil
    if not ctx.tensors then error("a tensor reference where none is allowed", 0) end
    if not i or i < 0 or i >= #ctx.tensors then error(("tensor reference %s is out of range (the file has %d tensors)"):format(tostring(x), #ctx.tensors), 0) end
    return ctx.tensors[i + 1]
  end,
  ["$int"] = function(x)
    local v = type(x) == "string" and x:match("^%-?%d+$") and math.tointeger(tonumber(x))
    if not v then error(("bad $int value %s"):format(tostring(x)), 0) end
    return v
  end,
  ["$float"] = function(x)
    if x == "nan" then return 0 / 0 elseif x == "inf" then return math.huge elseif x == "-inf" then return -math.huge end
    local v = type(x) == "string" and x:match("^%-?[%d.eE+-]+$") and tonumber(x)
    if not v then error(("bad $float value %s"):format(tostring(x)), 0) end
    return math.type(v) == "integer" and v + 0.0 or v     -- (v + 0.0 would turn -0.0 into 0.0)
  end,
  ["$bytes"] = function(x)
    local v = type(x) == "string" and unbase64(x)
    if not v then error("bad $bytes value (not base64)", 0) end
    return v
  end,
  ["$table"] = function(x, ctx, depth)
    if type(x) ~= "table" then error("bad $table value (not a list of pairs)", 0) end
    local t = {}
    for i = 1, #x do
      local pair = x[i]
      if type(pair) ~= "table" or #pair ~= 2 then error("bad $table entry (not a [key, value] pair)", 0) end
      local k = decode_value(pair[1], ctx, depth + 1)
      if k == nil or k ~= k or type(k) == "table" or torsh.is_tensor(k) then error("bad $table key", 0) end
      t[k] = decode_value(pair[2], ctx, depth + 1)
    end
    return t
  end,
}

function decode_value(v, ctx, depth)
  local tv = type(v)
  if tv == "number" then
    if v == math.floor(v) and v >= -TWO53 and v <= TWO53 then return math.tointeger(v) end
    return v
  elseif tv == "string" or tv == "boolean" then return v
  elseif v == NULL then return nil
  elseif tv ~= "table" then error("unexpected " .. tv, 0)
  end
  if depth > 3 * MAX_DEPTH + 8 then error("value is nested too deeply", 0) end
  local k1 = next(v)
  if type(k1) == "string" and k1:byte(1) == 36 then
    local tag = TAGS[k1]
    if not tag or next(v, k1) ~= nil then error(("unknown tagged object with key %s"):format(k1), 0) end
    return tag(v[k1], ctx, depth)
  end
  -- decoded in place (the JSON tables are ours): assigning existing fields
  -- during pairs() is allowed, and saves a copy of every table of the header
  for k, x in pairs(v) do
    if type(k) == "string" and k:byte(1) == 36 then error(("unknown tagged object with key %s"):format(k), 0) end
    local tx = type(x)
    if tx ~= "string" and tx ~= "boolean" then v[k] = decode_value(x, ctx, depth + 1) end
  end
  return v
end

local function fail(path, msg, level) error(("torsh.load: '%s': %s"):format(path, msg), level + 1) end

-- Opens path and decodes its JSON header; returns the open file and the header.
local function open_header(path, level)
  if type(path) ~= "string" then error("torsh.load: path must be a string", level + 1) end
  local f, err = C.open(path)
  if not f then error("torsh.load: " .. err, level + 1) end
  local ok, header = pcall(json.decode, f:json())
  if not ok then f:close(); fail(path, "the JSON header is corrupt (" .. tostring(header) .. ")", level + 1) end
  if type(header) ~= "table" or header.format ~= "torsh" then f:close(); fail(path, 'the JSON header is not a torsh header (no "format":"torsh")', level + 1) end
  if type(header.tensors) ~= "table" then f:close(); fail(path, 'the JSON header has no "tensors" list', level + 1) end
  return f, header
end

-- A PyTorch checkpoint (recognised by its first bytes, whatever its name):
-- the object torch.save wrote, through the restricted reader of lua/l_pt.c.
local function load_pt(path, kind, opts)
  local ok, value, container = pcall(torsh._pt.load, path, { mmap = opts.mmap ~= false, verify = opts.verify ~= false })
  if not ok then error("torsh.load: " .. tostring(value), 3) end
  return value, { format = "pt", container = container, keys = torsh._pt.keys(value) }
end

--- torsh.load(path [, {verify = true, mmap = true}]) -> value, metadata
--- Reads a file written by torsh.save. verify checks every tensor's CRC-32
--- (a mismatch names the tensor); mmap = false copies tensors into memory
--- instead of mapping the file read-only. Raises on a missing, truncated,
--- corrupt or newer-major-version file, naming the file and the problem.
---
--- A PyTorch checkpoint (torch.save's zip format, or the legacy format;
--- told by its magic bytes 'PK\3\4', not by its name, though a name ending
--- in .torsh always means the native format) loads too, without
--- running any code (only the pickle globals torch's weights_only loader
--- allows): the value comes back as Lua tables with tensors (a state_dict is
--- a table name -> tensor) and the metadata is {format = "pt", container =
--- "zip" | "legacy", keys = the top dict's keys in the file's order}. Every
--- dict keeps its order: pairs() walks it in the file's order and
--- torsh._pt.keys(d) lists it (see lua/l_pt.c for the whole mapping).
function torsh.load(path, opts)
  if opts ~= nil and type(opts) ~= "table" then error("torsh.load: options must be a table", 2) end
  opts = opts or {}
  -- by content, except that a file named *.torsh is always read as one (so
  -- a damaged .torsh file gets the .torsh reader's message)
  local pt_kind = type(path) == "string" and not path:find("%.torsh$") and torsh._pt.sniff(path)
  if pt_kind then return load_pt(path, pt_kind, opts) end
  local verify, copy = opts.verify ~= false, opts.mmap == false
  local f <close>, header = open_header(path, 2)
  local tensors = {}
  for i = 1, #header.tensors do
    local e = header.tensors[i]
    if type(e) ~= "table" then fail(path, ("tensor table entry %d is not an object"):format(i), 2) end
    local ok, t = pcall(f.tensor, f, e, verify, copy)
    if not ok then error("torsh.load: " .. tostring(t), 2) end
    tensors[i] = t
  end
  local ok, value = pcall(decode_value, header.value, { tensors = tensors }, 0)
  if not ok then fail(path, "bad value in the JSON header: " .. tostring(value), 2) end
  local meta
  ok, meta = pcall(decode_value, header.metadata == nil and {} or header.metadata, {}, 0)
  if not ok then fail(path, "bad metadata in the JSON header: " .. tostring(meta), 2) end
  return value, meta
end

--- M.header(path) -> the decoded JSON header table (format, version,
--- producer, metadata as stored, tensors, value as stored) and the fixed
--- header {major=, minor=, flags=, json_len=, data_offset=, size=}; no
--- tensor data is read.
function M.header(path)
  local f <close>, header = open_header(path, 2)
  return header, f:info()
end

M.save = torsh.save
M.load = torsh.load
return M
