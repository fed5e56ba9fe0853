-- torsh/model.lua — torsh.model: a model file opened as a runnable graph.
--
--   local m = torsh.model.load("resnet18.onnx")        -- or .torsh, or .pt with {arch=}
--   local y = m:run(x)                                  -- tensors in, tensors out
--   print(m:inputs()[1].name, table.concat(m:inputs()[1].shape, "x"))
--   m:save("resnet18.torsh")                            -- .torsh (mmap-ready) or .onnx
--   local report = m:inspect { batch = 1 }              -- params, FLOPs, layers, ...
--
-- Formats: ONNX (core/io/onnx_*.c), the native .torsh model (a torsh.save
-- file whose value is {format = "torsh.model", graph = ...}: weights are
-- mmapped on load), and weight files (.pt/.pth, .safetensors, .npz, a .torsh
-- state dict) which become runnable through {arch = NAME | "file.lua"}: the
-- architecture is built from the torsh.nn zoo (or the Lua file, which returns
-- a module or a function returning one), the weights are loaded strictly,
-- and the module is traced into a graph (torsh.jit.trace).
local torsh = require "torsh"
local G = torsh._graph

local M = {}

local Model = {}
Model.__index = Model
M.Model = Model

local function wrap(graph, fields)
  local m = setmetatable(fields or {}, Model)
  m.graph = graph
  return m
end

-- Options that every loader honours.
local function apply_opts(m, opts)
  if opts.optimize == false then m.optimize = false end
  return m
end

--- torsh.model.from_graph(graph [, fields]) -> Model wrapping a torsh._graph Graph.
function M.from_graph(graph, fields) return wrap(graph, fields) end

-- ---- the graph as a Lua table (the .torsh model layout) --------------------------------

--- Model:to_table() -> {name=, producer=, opsets=, meta=, inputs={{name=, dtype=, shape=}},
--- outputs={names}, constants={name -> tensor}, weights={names of weight constants}, nodes={...}}
function Model:to_table()
  local g = self.graph
  local info = g:info()
  local t = { name = info.name, producer = info.producer, producer_version = info.producer_version,
              opsets = info.opsets, meta = info.meta, inputs = {}, outputs = info.outputs,
              constants = {}, weights = {}, nodes = g:nodes() }
  for i, name in ipairs(info.inputs) do
    local v = g:value(name)
    t.inputs[i] = { name = name, dtype = v.dtype, shape = v.shape }
  end
  for _, name in ipairs(g:values()) do
    local v = g:value(name)
    if v.const and (v.weight or not v.producer) then
      t.constants[name] = g:const(name)
      if v.weight then t.weights[#t.weights + 1] = name end
    end
  end
  return t
end

local function check_list(x, what)
  if type(x) ~= "table" then error(("model file: %s must be a list"):format(what), 0) end
  return x
end

--- torsh.model.from_table(t) -> Model (the inverse of Model:to_table)
function M.from_table(t)
  if type(t) ~= "table" then error("model file: graph must be a table", 0) end
  local g = G.new(type(t.name) == "string" and t.name or "graph")
  if t.producer then g:set_producer(tostring(t.producer), tostring(t.producer_version or "")) end
  for domain, v in pairs(t.opsets or {}) do g:set_opset(domain, v) end
  for k, v in pairs(t.meta or {}) do g:set_meta(tostring(k), tostring(v)) end
  local weights = {}
  for _, name in ipairs(check_list(t.weights or {}, "weights")) do weights[name] = true end
  for name, tensor in pairs(t.constants or {}) do
    if not torsh.is_tensor(tensor) then error(("model file: constant '%s' is not a tensor"):format(name), 0) end
    g:set_const(name, tensor, weights[name] == true)
  end
  for _, inp in ipairs(check_list(t.inputs, "inputs")) do g:add_input(inp.name, inp.dtype, inp.shape) end
  for i, n in ipairs(check_list(t.nodes, "nodes")) do
    local ok, err = pcall(g.add_node, g, n.op, n.inputs, n.outputs, n.attrs, n.name, n.domain)
    if not ok then error(("model file: node %d (%s): %s"):format(i, tostring(n.op), err), 0) end
  end
  for _, name in ipairs(check_list(t.outputs, "outputs")) do g:add_output(name) end
  g:toposort()
  g:infer()
  return wrap(g)
end

-- ---- formats ---------------------------------------------------------------------------

local function read_magic(path, n)
  local f, err = io.open(path, "rb")
  if not f then error(err, 0) end
  local s = f:read(n) or ""
  f:close()
  return s
end

--- torsh.model.detect(path) -> "onnx" | "torsh" | "pt" | "safetensors" | "npz" | "npy"
function M.detect(path)
  local magic = read_magic(path, 8)
  if magic == "TORSH\0\r\n" then return "torsh" end
  if magic:sub(1, 6) == "\x93NUMPY" then return "npy" end
  local lower = path:lower()
  if magic:sub(1, 4) == "PK\3\4" then return lower:find("%.npz$") and "npz" or "pt" end
  if lower:find("%.safetensors$") then return "safetensors" end
  if lower:find("%.onnx$") then return "onnx" end
  -- ONNX files have no magic: a ModelProto starts with field 1 (ir_version, varint)
  if magic:byte(1) == 0x08 then return "onnx" end
  error(("%s: unknown model format (expected .onnx, .torsh, .pt/.pth, .safetensors or .npz)"):format(path), 0)
end

--- torsh.model.load_weights(path) -> name -> tensor table, key order list
function M.load_weights(path, fmt)
  fmt = fmt or M.detect(path)
  if fmt == "pt" or fmt == "torsh" then
    local v = torsh.load(path)
    if type(v) == "table" and v.format == "torsh.model" then
      local names, sd = {}, {}
      for _, n in ipairs(v.graph.weights or {}) do names[#names + 1] = n; sd[n] = v.graph.constants[n] end
      return sd, names
    end
    if type(v) == "table" and type(v.state_dict) == "table" then v = v.state_dict end
    if type(v) == "table" and type(v.model) == "table" and not torsh.is_tensor(v.model) then v = v.model end
    local names = {}
    local order = getmetatable(v) and getmetatable(v).__order
    if order then for i, k in ipairs(order) do names[i] = k end
    else for k in pairs(v) do names[#names + 1] = k end table.sort(names) end
    return v, names
  elseif fmt == "safetensors" then
    local sd, _, names = torsh.safetensors.load(path)
    return sd, names
  elseif fmt == "npz" then
    local sd, names = require("torsh.npz").load(path)
    return sd, names
  elseif fmt == "onnx" then
    local m = M.load(path)
    local sd, names = {}, {}
    for _, name in ipairs(m.graph:values()) do
      local v = m.graph:value(name)
      if v.weight then names[#names + 1] = name; sd[name] = m.graph:const(name) end
    end
    return sd, names
  end
  error(("%s: %s files hold no weights torsh can read"):format(path, fmt), 0)
end

-- The module named by arch: a zoo name ("resnet18", "mobilenet_v2", ...) or a
-- Lua file returning a module (or a function returning one).
local function build_arch(arch, opts)
  if arch:find("%.lua$") then
    local chunk, err = loadfile(arch)
    if not chunk then error(err, 0) end
    local m = chunk(opts)
    if type(m) == "function" then m = m(opts) end
    if type(m) ~= "table" or not m.forward then error(("%s: did not return a torsh.nn module"):format(arch), 0) end
    return m
  end
  local zoo = torsh.nn.zoo
  local ctor = zoo[arch] or zoo[arch:gsub("-", "_")]
  if type(ctor) ~= "function" then
    local names = {}
    for k, v in pairs(zoo) do if type(v) == "function" then names[#names + 1] = k end end
    table.sort(names)
    error(("unknown architecture '%s' (the zoo has: %s; or pass a .lua file)"):format(arch, table.concat(names, ", ")), 0)
  end
  return ctor(opts.arch_options or {})
end

-- Example input shapes of the zoo models, for tracing.
local EXAMPLE_SHAPES = {
  resnet18 = { 1, 3, 224, 224 }, resnet34 = { 1, 3, 224, 224 }, mobilenet_v2 = { 1, 3, 224, 224 },
  vit = { 1, 3, 224, 224 }, fashion_cnn = { 1, 1, 28, 28 }, lenet = { 1, 1, 28, 28 }, mlp = { 1, 784 },
}

--- torsh.model.from_module(module, example_input [, {name=}]) -> Model (traced)
function M.from_module(module, example, opts)
  return wrap(torsh.jit.trace(module, example, opts))
end

--- torsh.model.load(path [, {arch=, input_shape=, format=, verify=false, optimize=true}]) -> Model
--- (verify: check the CRC-32 of every tensor of a .torsh file; off by default
--- because it reads every weight, which mapping otherwise avoids)
function M.load(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then error("torsh.model.load: path must be a string", 2) end
  local fmt = opts.format or M.detect(path)
  if fmt == "onnx" then
    local g, err = G.load_onnx(path)
    if not g then error(err, 0) end
    g:infer()
    return apply_opts(wrap(g, { path = path, format = "onnx" }), opts)
  end
  if fmt == "torsh" then
    -- weights are mapped, not read: checking every CRC-32 would touch all of
    -- them, so models open unverified unless asked (torsh model ... --verify)
    local v = torsh.load(path, { verify = opts.verify == true })
    if type(v) == "table" and v.format == "torsh.model" then
      local ok, m = pcall(M.from_table, v.graph)
      if not ok then error(path .. ": " .. tostring(m), 0) end
      m.path, m.format = path, "torsh"
      return apply_opts(m, opts)
    end
  end
  if not opts.arch then
    error(("%s: a %s file holds weights but no graph; pass an architecture (--arch NAME from the torsh.nn zoo, or a .lua file)")
          :format(path, fmt), 0)
  end
  local sd = M.load_weights(path, fmt)
  local module = build_arch(opts.arch, opts)
  module:load_state_dict(sd, { strict = opts.strict ~= false })
  module:eval()
  local shape = opts.input_shape or EXAMPLE_SHAPES[opts.arch]
  if not shape then error(("architecture '%s': pass input_shape (--shape) to trace it"):format(opts.arch), 0) end
  local example = torsh.zeros(table.unpack(shape))
  local m = wrap(torsh.jit.trace(module, example, { name = opts.arch }), { path = path, format = fmt, module = module })
  return apply_opts(m, opts)
end

-- ---- the Model object --------------------------------------------------------------------

-- The graph the executor runs: an optimized clone (conv+bn folded, conv +
-- activation fused, 3x3 convs prepacked for Winograd), made on first run.
-- m.graph itself stays as loaded, for inspect and export; {optimize=false}
-- at load runs it as is.
function Model:exec_graph()
  if not self._exec then
    if self.optimize == false then
      self._exec = self.graph
    else
      local g = self.graph:clone()
      g:optimize()
      self._exec = g
    end
  end
  return self._exec
end

--- m:run(x1, ...) -> y1, ... (inputs in graph-input order)
function Model:run(...) return self:exec_graph():run(...) end
--- m:run_all(x1, ...) -> name -> tensor for every value (debugging, validation)
function Model:run_all(...) return self.graph:run_all(...) end

local function value_list(g, names)
  local out = {}
  for i, name in ipairs(names) do
    local v = g:value(name)
    out[i] = { name = name, dtype = v.dtype, shape = v.shape }
  end
  return out
end
--- m:inputs() / m:outputs() -> {{name=, dtype=, shape={...}}}; symbolic dims are strings
function Model:inputs() return value_list(self.graph, self.graph:info().inputs) end

--- m:random_inputs([batch]) -> {x1, ...}: one random tensor per graph input
--- (normal for float inputs, zeros otherwise), the symbolic batch dim set to
--- batch (default 1). Raises when another dim is symbolic or the file fixes
--- the batch dim to a different size.
function Model:random_inputs(batch)
  local ins = {}
  for i, v in ipairs(self:inputs()) do
    local shape = {}
    for d, size in ipairs(v.shape or {}) do
      if type(size) == "number" then shape[d] = size
      elseif d == 1 then shape[d] = batch or 1
      else error(("input '%s' dim %d is symbolic ('%s'); only the batch dim can be chosen"):format(v.name, d, size), 0) end
    end
    if batch and #shape > 0 and shape[1] ~= batch then
      error(("input '%s' has a fixed batch of %d (shape [%s]); batch %d cannot run: export the model with a dynamic batch dim")
            :format(v.name, shape[1], table.concat(v.shape, ", "), batch), 0)
    end
    local dt = v.dtype or "f32"
    ins[i] = (dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16") and torsh.randn(shape):to(dt) or torsh.zeros(shape):to(dt)
  end
  return ins
end
function Model:outputs() return value_list(self.graph, self.graph:info().outputs) end
function Model:info() return self.graph:info() end

--- m:save(path [, {opset=, external_data=}]): .onnx or .torsh by extension (atomic)
function Model:save(path, opts)
  opts = opts or {}
  if path:lower():find("%.onnx$") then
    local ok, err = self.graph:save_onnx(path, opts)
    if not ok then error(err, 0) end
    return
  end
  if path:lower():find("%.torsh$") then
    torsh.save({ format = "torsh.model", graph = self:to_table() }, path,
               { metadata = { kind = "model", name = self.graph:info().name } })
    return
  end
  if path:lower():find("%.pth?$") or path:lower():find("%.safetensors$") or path:lower():find("%.npz$") then
    local sd, names = {}, {}
    for _, name in ipairs(self.graph:values()) do
      local v = self.graph:value(name)
      if v.weight then sd[name] = self.graph:const(name); names[#names + 1] = name end
    end
    if path:lower():find("%.safetensors$") then torsh.safetensors.save(sd, path)
    elseif path:lower():find("%.npz$") then require("torsh.npz").save(path, sd)
    else torsh.save(sd, path, { keys = names }) end
    return
  end
  error(("%s: unknown output format (use .torsh, .onnx, .pt, .safetensors or .npz)"):format(path), 0)
end

--- m:inspect([{batch=1, shapes={name={...}}}]) -> report (see torsh.model.inspect)
function Model:inspect(opts) return require("torsh.model.inspect").inspect(self, opts) end

Model.__tostring = function(self)
  local info = self.graph:info()
  return ("torsh.Model(%s: %d nodes, inputs %s, outputs %s)"):format(info.name, info.n_nodes,
    table.concat(info.inputs, ","), table.concat(info.outputs, ","))
end

--- torsh.model.register_op(op_type, fn [, {domain=}]): a custom op in Lua:
--- fn(node, in1, in2, ...) -> out1, ... where node = {name=, op=, attrs=, ...}
function M.register_op(op_type, fn, opts) return G.register_op(op_type, fn, opts) end
--- torsh.model.ops([domain]) -> comma-separated names of the ops the executor runs
function M.ops(domain) return G.ops(domain) end

return M
