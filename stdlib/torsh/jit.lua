-- torsh/jit.lua — torsh.jit.trace(module, example): runs a torsh.nn module
-- once on an example input while recording the tensor operations it does,
-- and returns them as a graph (torsh._graph, ONNX op set 17) that the
-- executor runs, `torsh model` inspects and ONNX export writes.
--
--   local g = torsh.jit.trace(model, torsh.randn(1, 3, 224, 224))
--   local y = g:run(x)                      -- same as model(x) for any batch size
--
-- How: for the duration of the call, the tensor methods, metamethods and
-- torsh / torsh.nn.functional functions that models use are replaced by
-- wrappers that call the real op and add the matching node(s). Parameters
-- and buffers become weight constants named by their state-dict path; ops
-- whose inputs are all constants (slicing a fused weight, say) are folded
-- into new constants. Nodes are named after the module that ran them
-- ("layer1.0.conv1"). Dim 1 of the input is symbolic ("N") and reshapes keep
-- the batch dim (ONNX's 0 = "copy"), so the graph runs at any batch size.
-- The trace checks itself: the graph is run on the example and on a second,
-- random input, and its outputs must match the module's (max abs difference
-- within 1e-4 relative), so an op the tracer does not know, whose result
-- would be baked in as a constant, is caught.
local torsh = require "torsh"
local G = torsh._graph

local J = {}

local OPSET = 17

-- ---- the recording state ---------------------------------------------------------------

local Tracer = {}
Tracer.__index = Tracer

local function new_tracer(name)
  local self = setmetatable({}, Tracer)
  self.g = G.new(name)
  self.g:set_producer("torsh", torsh.version)
  self.g:set_opset("", OPSET)
  self.names = setmetatable({}, { __mode = "k" })     -- traced tensor -> value name
  self.param = setmetatable({}, { __mode = "k" })     -- parameter/buffer tensor -> state-dict name
  self.const = setmetatable({}, { __mode = "k" })     -- folded constant tensor -> name hint
  self.used = {}
  self.path = {}
  self.counter = 0
  self.depth = 0
  return self
end

function Tracer:fresh(hint)
  hint = hint or "v"
  local name = hint
  while self.used[name] do
    self.counter = self.counter + 1
    name = hint .. "_" .. self.counter
  end
  self.used[name] = true
  return name
end

function Tracer:is_traced(t) return torsh.is_tensor(t) and self.names[t] ~= nil and not self.const_value[self.names[t]] end

-- The value name of a tensor input (registering parameters and constants).
function Tracer:value(t)
  local n = self.names[t]
  if n then return n end
  if self.param[t] then
    n = self:fresh(self.param[t])
    self.g:set_const(n, t:contiguous(), true)
  else
    n = self:fresh(self.const[t] or "const")
    self.g:set_const(n, t:contiguous(), self.const[t] ~= nil)
  end
  self.const_value[n] = true
  self.names[t] = n
  return n
end

-- A constant made from Lua data (scalars, shapes).
function Tracer:constant(hint, t)
  local n = self:fresh(hint)
  self.g:set_const(n, t, false)
  self.const_value[n] = true
  return n
end

function Tracer:scalar(x, like)
  return self:constant("scalar", torsh.tensor(x, like and like:dtype() or "f32"))
end

function Tracer:ints(hint, list)
  return self:constant(hint, torsh.tensor(list, "i64"))
end

function Tracer:node_name(op)
  local base = #self.path > 0 and self.path[#self.path] or op
  return self:fresh(base ~= "" and base or op)
end

-- Adds a node: inputs are value names (or false), outputs tensors (named
-- here) or names; returns the output names.
function Tracer:emit(op, inputs, outputs, attrs)
  local out_names = {}
  for i, o in ipairs(outputs) do
    if type(o) == "string" then out_names[i] = o
    else
      out_names[i] = self:fresh((#self.path > 0 and self.path[#self.path] or op:lower()) .. ":out")
      self.names[o] = out_names[i]
    end
  end
  self.g:add_node(op, inputs, out_names, attrs, self:node_name(op))
  return out_names
end

-- ---- converters: op arguments -> nodes -----------------------------------------------------

local function pair(v, n)
  if type(v) == "table" then return v end
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

local function as_int_list(v)
  local out = {}
  for i, x in ipairs(v) do out[i] = math.tointeger(x) or error("jit.trace: expected integers", 0) end
  return out
end

-- Reshape target for an output shape: keep dim 1 as "copy" when it equals the input's.
local function reshape_target(inshape, outshape)
  local t = {}
  for i, d in ipairs(outshape) do t[i] = d end
  if #t > 0 and #inshape > 0 and t[1] == inshape[1] then t[1] = 0 end
  return t
end

local C = {}   -- name -> function(tr, result, args...) adding nodes for result

local function binary(op)
  return function(tr, r, a, b)
    local like = torsh.is_tensor(a) and a or b
    local an = torsh.is_tensor(a) and tr:value(a) or tr:scalar(a, like)
    local bn = torsh.is_tensor(b) and tr:value(b) or tr:scalar(b, like)
    tr:emit(op, { an, bn }, { r })
  end
end
C.add, C.sub, C.mul, C.div = binary("Add"), binary("Sub"), binary("Mul"), binary("Div")
C.pow = binary("Pow")

local function unary(op, attrs)
  return function(tr, r, x) tr:emit(op, { tr:value(x) }, { r }, attrs) end
end
for name, op in pairs { relu = "Relu", sigmoid = "Sigmoid", tanh = "Tanh", exp = "Exp", log = "Log",
                        sqrt = "Sqrt", abs = "Abs", neg = "Neg", erf = "Erf", reciprocal = "Reciprocal" } do
  C[name] = unary(op)
end
C.unm = C.neg
function C.leaky_relu(tr, r, x, slope) tr:emit("LeakyRelu", { tr:value(x) }, { r }, { alpha = { type = "float", value = slope or 0.01 } }) end
function C.silu(tr, r, x)
  local s = tr:emit("Sigmoid", { tr:value(x) }, { tr:fresh("silu:sig") })
  tr:emit("Mul", { tr:value(x), s[1] }, { r })
end
function C.gelu(tr, r, x)
  -- 0.5 * x * (1 + erf(x / sqrt(2))): Gelu is op set 20, this form runs everywhere
  local xn = tr:value(x)
  local d = tr:emit("Div", { xn, tr:scalar(math.sqrt(2), x) }, { tr:fresh("gelu:div") })
  local e = tr:emit("Erf", { d[1] }, { tr:fresh("gelu:erf") })
  local a = tr:emit("Add", { e[1], tr:scalar(1, x) }, { tr:fresh("gelu:add") })
  local m = tr:emit("Mul", { xn, a[1] }, { tr:fresh("gelu:mul") })
  tr:emit("Mul", { m[1], tr:scalar(0.5, x) }, { r })
end
function C.clamp(tr, r, x, lo, hi)
  tr:emit("Clip", { tr:value(x), lo and tr:scalar(lo, x) or false, hi and tr:scalar(hi, x) or false }, { r })
end
function C.reshape(tr, r, x)
  tr:emit("Reshape", { tr:value(x), tr:ints("shape", reshape_target(x:shape(), r:shape())) }, { r })
end
C.view, C.flatten = C.reshape, C.reshape
function C.permute(tr, r, x, ...)
  local dims = select("#", ...) == 1 and type((...)) == "table" and (...) or { ... }
  local perm = {}
  for i, d in ipairs(dims) do perm[i] = (d < 0 and d + x:dim() or d - 1) end
  tr:emit("Transpose", { tr:value(x) }, { r }, { perm = as_int_list(perm) })
end
function C.transpose(tr, r, x, a, b)
  local nd = x:dim()
  a = a < 0 and a + nd or a - 1
  b = b < 0 and b + nd or b - 1
  local perm = {}
  for i = 1, nd do perm[i] = i - 1 end
  perm[a + 1], perm[b + 1] = b, a
  tr:emit("Transpose", { tr:value(x) }, { r }, { perm = perm })
end
function C.t(tr, r, x) C.transpose(tr, r, x, 1, 2) end
function C.matmul(tr, r, a, b) tr:emit("MatMul", { tr:value(a), tr:value(b) }, { r }) end
local function axis_of(dim, nd) return dim < 0 and dim + nd or dim - 1 end
function C.softmax(tr, r, x, dim) tr:emit("Softmax", { tr:value(x) }, { r }, { axis = axis_of(dim or -1, x:dim()) }) end
function C.log_softmax(tr, r, x, dim) tr:emit("LogSoftmax", { tr:value(x) }, { r }, { axis = axis_of(dim or -1, x:dim()) }) end
local function reduce(op, axes_as_input)
  return function(tr, r, x, dims, keepdim)
    if type(dims) == "boolean" then dims, keepdim = nil, dims end
    local axes = {}
    if dims then
      for i, d in ipairs(type(dims) == "table" and dims or { dims }) do axes[i] = axis_of(d, x:dim()) end
    else
      for i = 1, x:dim() do axes[i] = i - 1 end
    end
    if axes_as_input then
      tr:emit(op, { tr:value(x), tr:ints("axes", axes) }, { r }, { keepdims = keepdim and 1 or 0 })
    else
      tr:emit(op, { tr:value(x) }, { r }, { axes = axes, keepdims = keepdim and 1 or 0 })
    end
  end
end
C.mean, C.sum = reduce("ReduceMean", false), reduce("ReduceSum", true)
function C.unsqueeze(tr, r, x, dim)
  local d = dim < 0 and dim + x:dim() + 1 or dim - 1
  tr:emit("Unsqueeze", { tr:value(x), tr:ints("axes", { d }) }, { r })
end
function C.squeeze(tr, r, x, dim)
  if dim then tr:emit("Squeeze", { tr:value(x), tr:ints("axes", { axis_of(dim, x:dim()) }) }, { r })
  else tr:emit("Squeeze", { tr:value(x) }, { r }) end
end
function C.narrow(tr, r, x, dim, start, len)
  local ax = axis_of(dim, x:dim())
  tr:emit("Slice", { tr:value(x), tr:ints("starts", { start - 1 }), tr:ints("ends", { start - 1 + len }),
                     tr:ints("axes", { ax }) }, { r })
end
function C.cat(tr, r, list, dim)
  local ins = {}
  for i, t in ipairs(list) do ins[i] = tr:value(t) end
  tr:emit("Concat", ins, { r }, { axis = axis_of(dim or 1, list[1]:dim()) })
end
function C.linear(tr, r, x, w, b)
  if x:dim() == 2 then
    tr:emit("Gemm", { tr:value(x), tr:value(w), b and tr:value(b) or false }, { r }, { transB = 1 })
    return
  end
  local wt = tr.param[w] and (tr.param[w] .. ".T") or "weight.T"
  local wtn = tr:constant(wt, w:t():contiguous())
  if not b then tr:emit("MatMul", { tr:value(x), wtn }, { r }) return end
  local m = tr:emit("MatMul", { tr:value(x), wtn }, { tr:fresh("linear:mm") })
  tr:emit("Add", { m[1], tr:value(b) }, { r })
end
local function conv(nsp)
  return function(tr, r, x, w, b, o)
    o = o or {}
    if type(o.padding) == "string" then error("jit.trace: conv padding '" .. o.padding .. "' is not supported; pass numbers", 0) end
    local pads = pair(o.padding or 0, nsp)
    local p = {}
    for i = 1, nsp do p[i] = pads[i]; p[i + nsp] = pads[i] end
    local kernel = {}
    for i = 3, w:dim() do kernel[#kernel + 1] = w:size(i) end
    tr:emit("Conv", { tr:value(x), tr:value(w), b and tr:value(b) or false }, { r }, {
      kernel_shape = kernel, strides = as_int_list(pair(o.stride or 1, nsp)), pads = as_int_list(p),
      dilations = as_int_list(pair(o.dilation or 1, nsp)), group = o.groups or 1 })
  end
end
C.conv1d, C.conv2d = conv(1), conv(2)
local function pool(op)
  return function(tr, r, x, k, o)
    o = o or {}
    local pads = pair(o.padding or 0, 2)
    local attrs = { kernel_shape = as_int_list(pair(k, 2)), strides = as_int_list(pair(o.stride or k, 2)),
                    pads = as_int_list { pads[1], pads[2], pads[1], pads[2] }, ceil_mode = o.ceil_mode and 1 or 0 }
    if op == "MaxPool" then attrs.dilations = as_int_list(pair(o.dilation or 1, 2))
    else attrs.count_include_pad = o.count_include_pad == false and 0 or 1 end
    tr:emit(op, { tr:value(x) }, { r }, attrs)
  end
end
C.max_pool2d, C.avg_pool2d = pool("MaxPool"), pool("AveragePool")
function C.adaptive_avg_pool2d(tr, r, x, size)
  local s = pair(size, 2)
  if s[1] == 1 and s[2] == 1 then tr:emit("GlobalAveragePool", { tr:value(x) }, { r }) return end
  local h, w = x:size(3), x:size(4)
  if h % s[1] ~= 0 or w % s[2] ~= 0 then
    error(("jit.trace: adaptive_avg_pool2d from %dx%d to %dx%d is not a plain pooling"):format(h, w, s[1], s[2]), 0)
  end
  tr:emit("AveragePool", { tr:value(x) }, { r }, { kernel_shape = { h // s[1], w // s[2] }, strides = { h // s[1], w // s[2] } })
end
function C.embedding(tr, r, w, idx) tr:emit("Gather", { tr:value(w), tr:value(idx) }, { r }, { axis = 0 }) end
function C.layer_norm(tr, r, x, shape, w, b, eps)
  local n = type(shape) == "table" and #shape or 1
  local shp = type(shape) == "table" and shape or { shape }
  w = w or torsh.ones(shp)
  tr:emit("LayerNormalization", { tr:value(x), tr:value(w), b and tr:value(b) or false }, { r },
    { axis = -n, epsilon = { type = "float", value = eps or 1e-5 } })
end
function C.batch_norm(tr, r, x, rmean, rvar, w, b, training, _, eps)
  if training then error("jit.trace: batch_norm in training mode; call model:eval() before tracing", 0) end
  local c = x:size(2)
  tr:emit("BatchNormalization", { tr:value(x), tr:value(w or torsh.ones(c)), tr:value(b or torsh.zeros(c)),
                                  tr:value(rmean), tr:value(rvar) }, { r }, { epsilon = { type = "float", value = eps or 1e-5 } })
end

-- Ops whose result is their input (eval-mode dropout, contiguous, detach).
local ALIAS = { contiguous = true, detach = true, dropout = true, clone = true }

-- ---- installing the wrappers ---------------------------------------------------------------

local function targets()
  local F = torsh.nn.functional
  local T = torsh.Tensor
  local mt = debug.getregistry()["torsh.Tensor"]
  return {
    { T, { "add", "sub", "mul", "div", "pow", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "neg",
           "erf", "reciprocal", "leaky_relu", "silu", "gelu", "clamp", "reshape", "view", "flatten", "permute",
           "transpose", "t", "matmul", "mean", "sum", "unsqueeze", "squeeze", "narrow", "contiguous", "detach", "clone" } },
    { mt, { __add = "add", __sub = "sub", __mul = "mul", __div = "div", __unm = "unm", __pow = "pow" } },
    { torsh, { "add", "sub", "mul", "div", "matmul", "softmax", "log_softmax", "cat", "linear", "conv1d", "conv2d",
               "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "embedding", "layer_norm", "relu", "sigmoid", "tanh" } },
    { F, { "dropout", "batch_norm", "gelu" } },
  }
end

local function install(tr)
  local saved = {}
  for _, entry in ipairs(targets()) do
    local tbl, list = entry[1], entry[2]
    for k, v in pairs(list) do
      local key, op = (type(k) == "number") and v or k, v
      local orig = rawget(tbl, key)
      if orig then
        saved[#saved + 1] = { tbl, key, orig }
        rawset(tbl, key, function(...)
          if tr.depth > 0 then return orig(...) end
          tr.depth = tr.depth + 1
          local res = table.pack(pcall(orig, ...))
          tr.depth = tr.depth - 1
          if not res[1] then error(res[2], 0) end
          local r = res[2]
          if not torsh.is_tensor(r) then return table.unpack(res, 2, res.n) end
          -- which tensor arguments are traced values?
          local args = table.pack(...)
          local traced, tensors = false, false
          for i = 1, args.n do
            local a = args[i]
            if torsh.is_tensor(a) then
              tensors = true
              if tr:is_traced(a) then traced = true end
            elseif type(a) == "table" and key == "cat" then
              for _, t in ipairs(a) do if tr:is_traced(t) then traced = true end end
            end
          end
          if not traced then
            -- a constant computed from constants (a slice of a weight): fold it
            if tensors and not tr.names[r] then
              for i = 1, args.n do
                local a = args[i]
                if torsh.is_tensor(a) and (tr.param[a] or tr.const[a]) then
                  tr.const[r] = (tr.param[a] or tr.const[a]) .. "." .. key
                  break
                end
              end
            end
            return table.unpack(res, 2, res.n)
          end
          if ALIAS[op] and (op ~= "dropout" or not args[3]) then
            tr.names[r] = tr:value(args[1])
          elseif r == args[1] and tr.names[r] then
            -- an op that returned its input (a no-op view): nothing to record
          else
            local conv = C[op]
            if not conv then error(("jit.trace: op '%s' is not supported by the tracer"):format(op), 0) end
            conv(tr, r, ...)
          end
          return table.unpack(res, 2, res.n)
        end)
      end
    end
  end
  -- module paths for node names
  local Module = require "torsh.nn.module"
  local call = Module._call
  saved[#saved + 1] = { Module, "_call", call }
  Module._call = function(self, ...)
    local p = self:path()
    tr.path[#tr.path + 1] = p
    local res = table.pack(pcall(call, self, ...))
    tr.path[#tr.path] = nil
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end
  return saved
end

local function uninstall(saved)
  for i = #saved, 1, -1 do rawset(saved[i][1], saved[i][2], saved[i][3]) end
end

--- torsh.jit.trace(module, example [, {name=, input_names=, output_names=, check=true, dynamic_batch=true}])
--- -> Graph (torsh._graph). example: a tensor or a list of tensors.
function J.trace(module, example, opts)
  opts = opts or {}
  if type(module) ~= "table" or not module.forward then error("jit.trace: the first argument must be a torsh.nn module", 2) end
  local examples = torsh.is_tensor(example) and { example } or example
  if type(examples) ~= "table" or #examples == 0 then error("jit.trace: example must be a tensor or a list of tensors", 2) end
  local tr = new_tracer(opts.name or module.__name or "model")
  tr.const_value = {}
  for _, pair_ in ipairs(module:named_parameters()) do tr.param[pair_[2]] = pair_[1] end
  for _, pair_ in ipairs(module:named_buffers()) do tr.param[pair_[2]] = pair_[1] end
  for i, x in ipairs(examples) do
    local name = opts.input_names and opts.input_names[i] or (#examples == 1 and "input" or ("input" .. i))
    local shape = x:shape()
    if opts.dynamic_batch ~= false and #shape > 0 then shape[1] = "N" end
    tr.used[name] = true
    tr.g:add_input(name, x:dtype(), shape)
    tr.names[x] = name
  end
  local was_training = module:is_training()
  module:eval()
  local saved = install(tr)
  local res = table.pack(pcall(function() return torsh.no_grad(function() return module(table.unpack(examples)) end) end))
  uninstall(saved)
  if not res[1] then
    if was_training then module:train() end
    error("jit.trace: " .. tostring(res[2]):gsub("^jit%.trace: ", ""), 2)
  end
  local outs = {}
  for i = 2, res.n do
    local r = res[i]
    if torsh.is_tensor(r) then outs[#outs + 1] = r end
  end
  if #outs == 0 then error("jit.trace: the module returned no tensor", 2) end
  for i, r in ipairs(outs) do
    local want = opts.output_names and opts.output_names[i] or (#outs == 1 and "output" or ("output" .. i))
    local src = tr:value(r)
    -- name the graph output: an Identity from the producing value keeps names stable
    if tr.const_value[src] or tr.used[want] then want = tr:fresh(want) else tr.used[want] = true end
    tr.g:add_node("Identity", { src }, { want }, nil, tr:fresh("output_" .. i))
    tr.g:add_output(want)
  end
  tr.g:prune()          -- drops what no output needs (e.g. a nested trace's leftovers)
  tr.g:infer()
  -- The self-check: on the example, and on a second, different input. An op
  -- the tracer does not record leaves its result frozen as a constant, which
  -- only a new input shows.
  local function check(inputs, want)
    local got = table.pack(tr.g:run(table.unpack(inputs)))
    for i, r in ipairs(want) do
      local diff = (got[i]:to("f64") - r:to("f64")):abs():max():item()
      local scale = math.max(1, r:to("f64"):abs():max():item())
      if diff ~= diff or diff > 1e-4 * scale then
        error(("jit.trace: the traced graph's output %d differs from the module's by %g: the module uses an op the tracer does not record"):format(i, diff), 0)
      end
    end
  end
  local ok_check, check_err = true, nil
  if opts.check ~= false then
    ok_check, check_err = pcall(function()
      check(examples, outs)
      local others = {}
      for i, x in ipairs(examples) do
        local dt = x:dtype()
        if dt ~= "f32" and dt ~= "f64" and dt ~= "f16" and dt ~= "bf16" then return end   -- (index inputs: one check)
        others[i] = (torsh.randn(x:shape()) * (x:to("f64"):std():item() + 0.5) + 0.25):to(dt)
      end
      local want = table.pack(torsh.no_grad(function() return module(table.unpack(others)) end))
      local wt = {}
      for i = 1, want.n do if torsh.is_tensor(want[i]) then wt[#wt + 1] = want[i] end end
      check(others, wt)
    end)
  end
  if was_training then module:train() end
  if not ok_check then error(check_err, 2) end
  return tr.g
end

return J
