-- torsh/safetensors.lua — Hugging Face .safetensors files (torsh.safetensors):
-- the format most model weights are published in. The C half
-- (torsh._safetensors, lua/l_safetensors.c over core/io/safetensors.c)
-- validates the whole file as the reference reader does and maps it once;
-- this file is the Lua-facing API, shaped like Python's safetensors.torch.
--
--   local st = torsh.safetensors
--   local sd, meta, names = st.load("model.safetensors")    -- read-only views (zero copy)
--   local sd2 = st.load("model.safetensors", { mmap = false }) -- writable copies
--   st.save({ weight = w, bias = b }, "out.safetensors", { format = "pt" })
--   local f <close> = st.open("model.safetensors")          -- lazy, like safe_open
--   for _, k in ipairs(f:keys()) do local t = f:get_tensor(k) ... end
--
-- Loaded tensors are read-only views of a mapping of the file (writing one
-- raises the core's read-only error: clone() it first) unless mmap = false.
-- save() writes like the reference writer (tensors sorted by dtype size then
-- name, metadata first, header padded to 8 bytes) and replaces the file
-- atomically. Tensor names are table keys; metadata is string -> string.
-- bf16 and every other torsh dtype round-trip; files holding dtypes torsh
-- has no type for (U16, U32, U64, F8_*) open, but loading those tensors
-- fails naming them (f:info(name).dtype shows the file's dtype).
local torsh = require "torsh"
local C = torsh._safetensors

local M = {}

local function clean(msg)
  return (tostring(msg):gsub("^safetensors write: ", ""):gsub("^safetensors save: ", ""):gsub("^safetensors: ", ""))
end

-- Calls a C function; raises "torsh.safetensors.<what>: <reason>" at the caller's caller.
local function call(what, fn, ...)
  local ok, a, b, c = pcall(fn, ...)
  if not ok then error("torsh.safetensors." .. what .. ": " .. clean(a), 3) end
  if a == nil then error("torsh.safetensors." .. what .. ": " .. clean(b), 3) end
  return a, b, c
end

--- st.load(path [, {mmap = true}]) -> tensors (name -> Tensor), metadata (table), names (in file order).
function M.load(path, opts)
  if type(path) ~= "string" then error("torsh.safetensors.load: path must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("torsh.safetensors.load: options must be a table", 2) end
  return call("load", C.load, path, opts)
end

--- st.save(tensors, path [, metadata]): tensors is a table name -> Tensor (or a
--- list of {name, Tensor} pairs); metadata a table of strings. Returns true.
function M.save(tensors, path, metadata)
  if type(tensors) ~= "table" then error("torsh.safetensors.save: tensors must be a table of name -> tensor", 2) end
  if type(path) ~= "string" or path == "" then error("torsh.safetensors.save: path must be a non-empty string", 2) end
  if metadata ~= nil and type(metadata) ~= "table" then error("torsh.safetensors.save: metadata must be a table", 2) end
  return call("save", C.save, path, tensors, metadata)
end

-- Python's names (safetensors.torch.load_file / save_file)
M.load_file, M.save_file = M.load, M.save

-- ---- lazy access ----------------------------------------------------------------

local File = {}
File.__index = File

--- st.open(path) -> File: f:keys() (names in file order), f:get_tensor(name [, {mmap = true}]),
--- f:info(name) -> {dtype = "F32", shape = {...}, data_offsets = {b, e}} or nil,
--- f:metadata(), f:close() (also on <close> and garbage collection).
function M.open(path)
  if type(path) ~= "string" then error("torsh.safetensors.open: path must be a string", 2) end
  local h = call("open", C.open, path)
  return setmetatable({ handle = h, path = path }, File)
end

function File:keys() return self.handle:names() end
function File:metadata() return self.handle:metadata() end
function File:info(name) return self.handle:info(name) end
function File:get_tensor(name, opts)
  if type(name) ~= "string" then error("get_tensor: name must be a string", 2) end
  local copy = type(opts) == "table" and opts.mmap == false
  local ok, t = pcall(self.handle.tensor, self.handle, name, copy)
  if not ok then error("torsh.safetensors: " .. clean(t), 2) end
  return t
end
function File:close() self.handle:close() end
File.__close = File.close

return M
