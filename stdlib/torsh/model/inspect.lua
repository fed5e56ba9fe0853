-- torsh/model/inspect.lua — what `torsh model inspect` reports about a model:
-- inputs/outputs, parameter count and bytes by dtype, FLOPs per sample (a
-- multiply-add counts 2), peak activation memory, and a per-layer table;
-- plus an ASCII tree and a Graphviz rendering of the graph.
--
-- Counting rules (docs/MODELS.md):
--  * parameters are the elements of weight constants read by compute nodes;
--    an Identity node reading a weight counts as its own parameter (torch's
--    exporter merges identical initializers and re-emits them through
--    Identity); BatchNormalization's running mean and variance are buffers,
--    counted apart, as PyTorch does.
--  * FLOPs come from each op's FLOPs rule after shape inference with every
--    symbolic dim bound to the batch size, divided by the batch size.
--  * peak activation memory replays the executor's schedule: a value lives
--    from the node that makes it to its last reader; graph inputs count.
local M = {}

local function numel(shape, bind)
  local n = 1
  for _, d in ipairs(shape or {}) do
    if type(d) == "string" and bind then d = bind[d] end
    if type(d) ~= "number" then return nil end
    n = n * d
  end
  return n
end

local DTYPE_BYTES = { f32 = 4, f64 = 8, f16 = 2, bf16 = 2, i8 = 1, u8 = 1, i16 = 2, i32 = 4, i64 = 8, bool = 1 }

local function bytes_of(v, bind)
  local n = numel(v.shape, bind)
  return n and v.dtype and n * (DTYPE_BYTES[v.dtype] or 0) or nil
end

-- Which constant inputs of a node are buffers rather than parameters.
local BUFFER_INPUTS = { BatchNormalization = { [4] = true, [5] = true } }

--- M.inspect(model [, {batch=1}]) -> report table (the JSON of `torsh model inspect`)
function M.inspect(model, opts)
  opts = opts or {}
  local batch = opts.batch or 1
  local g = model.graph:clone()
  local info = g:info()
  -- bind every symbol of the inputs to the batch size
  local bind = {}
  local inputs = {}
  for i, name in ipairs(info.inputs) do
    local v = g:value(name)
    for _, d in ipairs(v.shape or {}) do if type(d) == "string" and d ~= "?" then bind[d] = batch end end
    inputs[i] = { name = name, dtype = v.dtype, shape = v.shape }
  end
  local ok_infer, infer_err = pcall(g.infer, g, bind)
  local nodes = g:nodes()
  local flops = ok_infer and g:flops() or {}

  -- values that are weights, seen through Identity aliases
  local weight_of = {}
  for _, name in ipairs(g:values()) do
    local v = g:value(name)
    if v.weight then weight_of[name] = name end
  end
  for _, n in ipairs(nodes) do
    if n.op == "Identity" and n.inputs[1] and weight_of[n.inputs[1]] then weight_of[n.outputs[1]] = n.outputs[1] end
  end

  local counted, params, buffers, param_bytes, by_dtype = {}, 0, 0, 0, {}
  local layers, total_flops, unknown_flops = {}, 0, false
  for i, n in ipairs(nodes) do
    local layer_params = 0
    if n.op ~= "Identity" then
      for k, inp in ipairs(n.inputs) do
        local w = inp and weight_of[inp]
        if w and not counted[w] then
          counted[w] = true
          local v = g:value(w)
          local c = numel(v.shape) or 0
          if BUFFER_INPUTS[n.op] and BUFFER_INPUTS[n.op][k] then
            buffers = buffers + c
          else
            params = params + c
            layer_params = layer_params + c
            local b = c * (DTYPE_BYTES[v.dtype] or 0)
            param_bytes = param_bytes + b
            by_dtype[v.dtype] = (by_dtype[v.dtype] or 0) + b
          end
        end
      end
    end
    local f = flops[i] or -1
    if f < 0 then unknown_flops = true else total_flops = total_flops + f end
    local out = n.outputs[1] and g:value(n.outputs[1])
    layers[#layers + 1] = { name = n.name, op = n.op, output_shape = out and out.shape or nil,
                            params = layer_params, flops = f >= 0 and f / batch or nil }
  end

  -- peak activation memory: replay the schedule
  local last_use = {}
  for i, n in ipairs(nodes) do
    for _, inp in ipairs(n.inputs) do if inp then last_use[inp] = i end end
  end
  for _, name in ipairs(info.outputs) do last_use[name] = math.huge end
  local live, peak, unknown_mem = 0, 0, false
  local function add(name)
    local v = g:value(name)
    if v.const then return end
    local b = bytes_of(v, bind)
    if not b then unknown_mem = true; return end
    live = live + b
  end
  local function drop(name)
    local v = g:value(name)
    if v.const then return end
    live = live - (bytes_of(v, bind) or 0)
  end
  for _, name in ipairs(info.inputs) do add(name) end
  peak = live
  for i, n in ipairs(nodes) do
    for _, o in ipairs(n.outputs) do add(o) end
    if live > peak then peak = live end
    for _, o in ipairs(n.outputs) do if not last_use[o] then drop(o) end end
    for _, inp in ipairs(n.inputs) do
      if inp and last_use[inp] == i then last_use[inp] = -1; drop(inp) end
    end
  end

  local op_counts = {}
  for _, n in ipairs(nodes) do op_counts[n.op] = (op_counts[n.op] or 0) + 1 end
  local outputs = {}
  for i, name in ipairs(info.outputs) do
    local v = model.graph:value(name)
    outputs[i] = { name = name, dtype = v.dtype, shape = v.shape }
  end
  local opset = info.opsets[""] or info.opsets["ai.onnx"]
  return {
    format = model.format or "graph", path = model.path, name = info.name,
    producer = info.producer ~= "" and (info.producer .. (info.producer_version ~= "" and (" " .. info.producer_version) or "")) or nil,
    opset = opset, opsets = info.opsets, metadata = info.meta,
    inputs = inputs, outputs = outputs,
    params = params, buffers = buffers, param_bytes = param_bytes, param_bytes_by_dtype = by_dtype,
    flops = (not unknown_flops and ok_infer) and total_flops / batch or nil,
    flops_complete = ok_infer and not unknown_flops,
    batch = batch,
    peak_activation_bytes = (ok_infer and not unknown_mem) and peak or nil,
    nodes = #nodes, op_counts = op_counts, layers = layers,
    warnings = not ok_infer and { "shape inference failed: " .. tostring(infer_err) } or nil,
  }
end

--- M.tree(model) -> ASCII rendering of the graph, one node per line with its inputs
function M.tree(model)
  local g = model.graph
  local lines, info = {}, g:info()
  for _, name in ipairs(info.inputs) do
    local v = g:value(name)
    lines[#lines + 1] = ("input  %s %s[%s]"):format(name, v.dtype or "?", table.concat(v.shape or {}, ","))
  end
  local nodes = g:nodes()
  for i, n in ipairs(nodes) do
    local ins = {}
    for _, x in ipairs(n.inputs) do
      if x then
        local v = g:value(x)
        if not (v and v.const) then ins[#ins + 1] = x end
      end
    end
    local out = n.outputs[1] and g:value(n.outputs[1])
    local branch = i == #nodes and "└─" or "├─"
    lines[#lines + 1] = ("%s %s %s(%s) -> %s %s"):format(branch, n.name, n.op, table.concat(ins, ", "),
      table.concat(n.outputs, ", "), out and out.shape and ("[" .. table.concat(out.shape, ",") .. "]") or "")
  end
  for _, name in ipairs(info.outputs) do lines[#lines + 1] = "output " .. name end
  return table.concat(lines, "\n") .. "\n"
end

local function dot_id(s) return '"' .. s:gsub('[\\"]', "\\%0") .. '"' end

--- M.dot(model) -> Graphviz text (nodes are ops, edges are values)
function M.dot(model)
  local g = model.graph
  local out = { "digraph model {", "  rankdir=TB;", "  node [shape=box, fontname=\"Helvetica\"];" }
  local producer = {}
  local info = g:info()
  for _, name in ipairs(info.inputs) do
    out[#out + 1] = ("  %s [shape=ellipse];"):format(dot_id("in:" .. name))
    producer[name] = "in:" .. name
  end
  for _, n in ipairs(g:nodes()) do
    out[#out + 1] = ("  %s [label=%s];"):format(dot_id(n.name), dot_id(n.op .. "\n" .. n.name))
    for _, x in ipairs(n.inputs) do
      if x and producer[x] then
        local v = g:value(x)
        out[#out + 1] = ("  %s -> %s [label=%s];"):format(dot_id(producer[x]), dot_id(n.name),
          dot_id(v.shape and table.concat(v.shape, "x") or ""))
      end
    end
    for _, o in ipairs(n.outputs) do producer[o] = n.name end
  end
  for _, name in ipairs(info.outputs) do
    out[#out + 1] = ("  %s [shape=ellipse];"):format(dot_id("out:" .. name))
    if producer[name] then out[#out + 1] = ("  %s -> %s;"):format(dot_id(producer[name]), dot_id("out:" .. name)) end
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

return M
