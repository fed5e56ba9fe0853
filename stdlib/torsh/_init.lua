-- torsh/_init.lua — the Lua half of the torsh module: loaded by luaopen_torsh
-- with the C half already in package.loaded.torsh. Adds printing (tostring of
-- a tensor looks like PyTorch's), the REPL's value printer, and small helpers
-- that are easier to read in Lua than in C.
local torsh = require "torsh"
local format = require "torsh.format"

local mt = debug.getregistry()["torsh.Tensor"]
mt.__tostring = format.tensor
torsh.format = format.tensor
torsh.set_printoptions = format.set_printoptions

-- the REPL prints values through this
function torsh.repl_print(v)
  if getmetatable(v) == mt then return format.tensor(v) end
  if type(v) == "table" then return format.table(v) end
  return tostring(v)
end

torsh.autograd = require "torsh.autograd"

-- Library parts load on first use: torsh.nn, torsh.optim, torsh.data, ...
local lazy = { nn = "torsh.nn", optim = "torsh.optim", data = "torsh.data", cli = "torsh.cli", hub = "torsh.hub",
               train = "torsh.train", jit = "torsh.jit", model = "torsh.model", profiler = "torsh.profiler",
               tb = "torsh.tb", onnx = "torsh.onnx", safetensors = "torsh.safetensors" }
local lazy_fn = { save = "torsh.io", load = "torsh.io", load_npz = "torsh.npz", save_npz = "torsh.npz",
                  save_npy = "torsh.npz" }
setmetatable(torsh, { __index = function(t, k)
  if lazy[k] then
    local m = require(lazy[k])
    rawset(t, k, m)
    return m
  end
  if lazy_fn[k] then
    require(lazy_fn[k])           -- defines torsh.save / torsh.load
    return rawget(t, k)
  end
end })

local Tensor = torsh.Tensor
--- t:is_tensor() and torsh.is_tensor(v): true for live tensors.
function torsh.is_tensor(v) return getmetatable(v) == mt end
--- t:tolist() is an alias of t:totable() for PyTorch habits.
Tensor.tolist = Tensor.totable
--- t:float(), t:double(), t:long(), ... dtype shortcuts.
for name, dt in pairs { float = "f32", double = "f64", half = "f16", bfloat16 = "bf16",
                        long = "i64", int = "i32", short = "i16", char = "i8", byte = "u8", bool = "bool" } do
  Tensor[name] = function(t) return t:to(dt) end
end

return torsh
