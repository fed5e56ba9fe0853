-- torsh/npz.lua — NumPy .npz archives and .npy files: defines torsh.load_npz,
-- torsh.save_npz and torsh.save_npy (the C half is torsh._npz,
-- lua/l_npz.c over core/io/npz.c; .npy files are read by torsh.data.npy_read).
--
--   local arrays, keys = torsh.load_npz("data.npz")   -- from np.savez / np.savez_compressed
--   torsh.save_npz("out.npz", { x = x, y = y })      -- like np.savez(file, x=x, y=y)
--   torsh.save_npz("out.npz", { { "b", b }, { "a", a } })   -- pairs keep their order
--   torsh.save_npy("x.npy", x)                        -- like np.save
--
-- Keys are the entry names without ".npy" (np.load's keys). load_npz gives
-- writable heap tensors; { mmap = true } makes stored, aligned arrays
-- read-only views of the mapped file instead (every array of a file saved by
-- save_npz qualifies). CRC-32s are checked unless { verify = false }.
-- save_npz writes stored (uncompressed) entries with numpy's own .npy
-- headers, atomically; a table's keys are written in sorted order. NumPy has
-- no bfloat16: convert bf16 tensors (t:to("f32")) before saving.
local torsh = require "torsh"
local C = torsh._npz

local M = {}

local function clean(msg) return (tostring(msg):gsub("^npz write: ", ""):gsub("^npz save: ", ""):gsub("^npz: ", "")) end

local function call(what, fn, ...)
  local ok, a, b = pcall(fn, ...)
  if not ok then error("torsh." .. what .. ": " .. clean(a), 3) end
  if a == nil then error("torsh." .. what .. ": " .. clean(b), 3) end
  return a, b
end

--- torsh.load_npz(path [, {mmap = false, verify = true}]) -> arrays (key -> Tensor), keys (archive order).
function M.load(path, opts)
  if type(path) ~= "string" then error("torsh.load_npz: path must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("torsh.load_npz: options must be a table", 2) end
  return call("load_npz", C.load, path, opts)
end

--- torsh.save_npz(path, arrays): arrays is a table key -> Tensor or a list of {key, Tensor}. Returns true.
function M.save(path, arrays)
  if type(path) ~= "string" or path == "" then error("torsh.save_npz: path must be a non-empty string", 2) end
  if type(arrays) ~= "table" then error("torsh.save_npz: arrays must be a table of key -> tensor", 2) end
  return call("save_npz", C.save, path, arrays)
end

--- torsh.save_npy(path, tensor): one .npy file, numpy's header, atomically. Returns true.
function M.save_npy(path, t)
  if type(path) ~= "string" or path == "" then error("torsh.save_npy: path must be a non-empty string", 2) end
  if not torsh.is_tensor(t) then error("torsh.save_npy: expected a tensor", 2) end
  return call("save_npy", C.save_npy, path, t)
end

torsh.load_npz, torsh.save_npz, torsh.save_npy = M.load, M.save, M.save_npy

return M
