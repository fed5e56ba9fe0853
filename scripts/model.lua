-- inspect, convert, run, validate and diff model files (ONNX, .torsh, .pt, safetensors, .npz)
-- run and check model files (ONNX, .torsh, .pt/.pth, .safetensors, .npz).
local torsh = require "torsh"
local cli = require "torsh.cli"
local model = require "torsh.model"

local SUB = arg[1]
local SUBS = { inspect = true, convert = true, run = true, validate = true, diff = true }
local rest = {}
for i = 2, #arg do rest[#rest + 1] = arg[i] end

local COMMON = {
  { "format", "table|json|yaml", default = "table", choices = { "table", "json", "yaml" }, help = "output format" },
  { "arch", "NAME|FILE.lua", help = "architecture for weight files (.pt, .safetensors, .npz): a torsh.nn zoo name or a Lua file" },
  { "shape", "D1,D2,...", help = "example input shape for tracing --arch models (default: the zoo model's)" },
  { "threads", "N", help = "compute threads (default: all cores)" },
}
local function with_common(list)
  local out = {}
  for _, o in ipairs(list) do out[#out + 1] = o end
  for _, o in ipairs(COMMON) do out[#out + 1] = o end
  return out
end

local SPECS = {
  inspect = {
    positional = "FILE",
    summary = "Shows a model's format, producer, opset, inputs and outputs, parameters and bytes by dtype,\n" ..
              "FLOPs per sample (a multiply-add counts 2), peak activation memory at batch 1 and a per-layer table.",
    options = with_common {
      { "graph", flag = true, help = "print the graph as an ASCII tree" },
      { "dot", "FILE", help = "write the graph as Graphviz to FILE" },
      { "batch", "N", default = "1", help = "batch size for shapes, FLOPs and memory (reported per sample)" },
      { "layers", flag = true, help = "print the per-layer table (always in json/yaml)" },
    },
    examples = { "torsh model inspect resnet18.onnx", "torsh model inspect resnet18.onnx --format json",
                 "torsh model inspect model.pt --arch fashion_cnn --layers", "torsh model inspect m.onnx --dot m.dot" },
  },
  convert = {
    positional = "IN OUT",
    summary = "Converts between model formats, chosen by the file extensions: .onnx, .torsh (graph + weights,\n" ..
              "loads by mmap), .pt/.pth, .safetensors, .npz (weights only). Weight files need --arch to become a graph.",
    options = with_common { { "opset", "N", help = "ONNX opset to write (default: the graph's)" },
                            { "external-data", flag = true, help = "ONNX: write weights to OUT.data (models over 2 GB)" } },
    examples = { "torsh model convert resnet18.onnx resnet18.torsh", "torsh model convert model.pt model.onnx --arch fashion_cnn",
                 "torsh model convert model.pt model.safetensors" },
  },
  run = {
    positional = "FILE",
    summary = "Runs inference: inputs from .npy files (in graph-input order, or NAME=FILE), outputs to .npy.\n" ..
              "--bench times it instead (with --batch N and random inputs when none are given).",
    options = with_common {
      { "input", "[NAME=]FILE.npy", multi = true, help = "an input tensor (repeat for several)" },
      { "output", "FILE.npy", help = "where to write the first output (OUT.npy, then OUT.2.npy, ...)" },
      { "batch", "N", help = "batch size for random inputs (with --bench)" },
      { "bench", flag = true, help = "measure latency (median over repeated runs)" },
      { "runs", "N", help = "timed runs for --bench (default: until the median is stable, at most 2 s)" },
    },
    examples = { "torsh model run resnet18.onnx --input x.npy --output y.npy",
                 "torsh model run resnet18.onnx --batch 8 --bench" },
  },
  validate = {
    positional = "FILE",
    summary = "Accuracy, loss and latency of a classifier over a data set; with --reference OTHER, compares\n" ..
              "both models' outputs over the data set (max/mean abs difference, argmax agreement).",
    options = with_common {
      { "dataset", "NAME[:SPLIT]", default = "fashion-mnist:test", help = "data set (torsh dataset ls) and split" },
      { "limit", "N", help = "use only the first N samples" },
      { "batch", "N", default = "100", help = "batch size" },
      { "reference", "OTHER", help = "a second model to compare outputs with" },
      { "normalize", "MEAN,STD", help = "input normalization after scaling pixels to [0,1] (default: the data set's)" },
      { "tolerance", "X", help = "with --reference: exit 1 when the max abs difference exceeds X" },
    },
    examples = { "torsh model validate fashion.onnx --dataset fashion-mnist:test",
                 "torsh model validate new.torsh --reference old.onnx --limit 1000 --tolerance 1e-4" },
  },
  diff = {
    positional = "A B",
    summary = "Compares the weights of two model or weight files: which tensors are only in one, differ in\n" ..
              "shape or dtype, or differ in value (max abs / mean abs difference).",
    options = with_common { { "atol", "X", default = "0", help = "treat differences up to X as equal" } },
    examples = { "torsh model diff a.pt b.pt", "torsh model diff model.onnx model.torsh --format json" },
  },
}

if not SUBS[SUB] then
  if SUB == "--help" or SUB == "-h" or SUB == nil then
    io.write("usage: torsh model inspect|convert|run|validate|diff ...\n\n",
             "  inspect FILE      format, inputs/outputs, params, FLOPs, memory, layers\n",
             "  convert IN OUT    between .onnx, .torsh, .pt/.pth, .safetensors, .npz\n",
             "  run FILE          inference from .npy inputs (or --bench)\n",
             "  validate FILE     accuracy/loss/latency on a data set, or --reference comparison\n",
             "  diff A B          which tensors differ and by how much\n\n",
             "torsh model SUBCOMMAND --help for the options of each.\n")
    os.exit(SUB and 0 or 2)
  end
  cli.usage_error(("model: unknown subcommand '%s' (inspect, convert, run, validate, diff)"):format(tostring(SUB)))
end

local spec = SPECS[SUB]
spec.name = "model " .. SUB
local opts = cli.parse(rest, spec)
if opts.threads then torsh.set_num_threads(tonumber(opts.threads) or cli.usage_error("--threads takes a number")) end

local function fail(msg)
  io.stderr:write("torsh: model ", SUB, ": ", (tostring(msg):gsub("^[^:]*%.lua:%d+: ", "")), "\n")
  os.exit(1)
end

-- A whole-number option >= lo (usage error otherwise); nil when not given.
local function int_option(name, lo)
  local v = opts[name]
  if v == nil then return nil end
  local x = math.tointeger(tonumber(v))
  if not x or x < lo then cli.usage_error(("model %s: --%s takes a whole number >= %d, got '%s'"):format(SUB, name, lo, v)) end
  return x
end

local function need(n)
  if #opts < n then cli.usage_error(("model %s: expected %s (see --help)"):format(SUB, spec.positional)) end
end

local function parse_shape(s)
  if not s then return nil end
  local shape = {}
  for d in s:gmatch("[^,x]+") do shape[#shape + 1] = math.tointeger(tonumber(d)) or cli.usage_error("--shape: bad dim " .. d) end
  return shape
end

local function load(path)
  local ok, m = pcall(model.load, path, { arch = opts.arch, input_shape = parse_shape(opts.shape) })
  if not ok then fail(m) end
  return m
end

local function human_count(n)
  if not n then return "?" end
  if n >= 1e9 then return ("%.2f G"):format(n / 1e9) end
  if n >= 1e6 then return ("%.2f M"):format(n / 1e6) end
  if n >= 1e3 then return ("%.1f K"):format(n / 1e3) end
  return tostring(math.floor(n))
end

local function human_bytes(b)
  if not b then return "?" end
  if b >= 2 ^ 30 then return ("%.2f GiB"):format(b / 2 ^ 30) end
  if b >= 2 ^ 20 then return ("%.2f MiB"):format(b / 2 ^ 20) end
  if b >= 2 ^ 10 then return ("%.1f KiB"):format(b / 2 ^ 10) end
  return ("%d B"):format(b)
end

local function shape_text(s) return s and ("[" .. table.concat(s, ", ") .. "]") or "?" end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- ---- inspect ---------------------------------------------------------------------------------

local function inspect()
  need(1)
  local m = load(opts[1])
  local rep = m:inspect { batch = int_option("batch", 1) or 1 }
  rep.path = opts[1]
  rep.file_bytes = file_size(opts[1])
  if opts.dot then
    local ok, err = pcall(function()
      local f = assert(io.open(opts.dot, "w"))
      f:write(require("torsh.model.inspect").dot(m))
      f:close()
    end)
    if not ok then fail(err) end
  end
  cli.output(rep, opts.format, function(r)
    local lines = {
      ("%s  (%s%s)"):format(r.path, r.format, r.producer and (", produced by " .. r.producer) or ""),
      r.opset and ("opset          %d"):format(r.opset) or nil,
    }
    local function add(s) lines[#lines + 1] = s end
    for _, v in ipairs(r.inputs) do add(("input          %s %s %s"):format(v.name, v.dtype or "?", shape_text(v.shape))) end
    for _, v in ipairs(r.outputs) do add(("output         %s %s %s"):format(v.name, v.dtype or "?", shape_text(v.shape))) end
    add(("parameters     %s (%d)%s"):format(human_count(r.params), r.params,
        r.buffers > 0 and (", buffers " .. r.buffers) or ""))
    local dts = {}
    for dt, b in pairs(r.param_bytes_by_dtype) do dts[#dts + 1] = dt .. " " .. human_bytes(b) end
    table.sort(dts)
    add(("weights        %s (%s)"):format(human_bytes(r.param_bytes), table.concat(dts, ", ")))
    add(("FLOPs/sample   %s%s"):format(r.flops and human_count(r.flops) or "?", r.flops and "" or " (shapes unknown)"))
    add(("peak act. mem  %s at batch %d"):format(human_bytes(r.peak_activation_bytes), r.batch))
    local ops = {}
    for op, c in pairs(r.op_counts) do ops[#ops + 1] = op .. " " .. c end
    table.sort(ops)
    add(("nodes          %d: %s"):format(r.nodes, table.concat(ops, ", ")))
    for _, w in ipairs(r.warnings or {}) do add("warning: " .. w) end
    local out = table.concat(lines, "\n") .. "\n"
    if opts.layers then
      local rows = {}
      for _, l in ipairs(r.layers) do
        rows[#rows + 1] = { name = l.name, op = l.op, shape = shape_text(l.output_shape),
                            params = l.params > 0 and tostring(l.params) or "", flops = l.flops and human_count(l.flops) or "" }
      end
      out = out .. "\n" .. cli.table(rows, { { "name", "LAYER" }, { "op", "OP" }, { "shape", "OUTPUT" },
                                               { "params", "PARAMS" }, { "flops", "FLOPS" } })
    end
    if opts.graph then out = out .. "\n" .. require("torsh.model.inspect").tree(m) end
    return out
  end)
end

-- ---- convert ---------------------------------------------------------------------------------

local function convert()
  need(2)
  local src, dst = opts[1], opts[2]
  local t0 = torsh.clock and torsh.clock() or os.clock()
  local dst_lower = dst:lower()
  local weights_only = dst_lower:find("%.pth?$") or dst_lower:find("%.safetensors$") or dst_lower:find("%.npz$")
  local fmt_ok, src_fmt = pcall(model.detect, src)
  if not fmt_ok then fail(src_fmt) end
  local ok, err = pcall(function()
    if weights_only and src_fmt ~= "onnx" and not opts.arch then
      -- weights to weights: no graph needed
      local sd, names = model.load_weights(src, src_fmt)
      if dst_lower:find("%.safetensors$") then torsh.safetensors.save(sd, dst)
      elseif dst_lower:find("%.npz$") then require("torsh.npz").save(dst, sd)
      else torsh.save(sd, dst, { keys = names }) end
      return
    end
    local m = load(src)
    m:save(dst, { opset = tonumber(opts.opset), external_data = opts["external-data"] })
  end)
  if not ok then fail(err) end
  local secs = (torsh.clock and torsh.clock() or os.clock()) - t0
  local rep = { input = src, output = dst, input_format = src_fmt, input_bytes = file_size(src),
                output_bytes = file_size(dst), seconds = secs }
  cli.output(rep, opts.format, function(r)
    return ("converted %s (%s, %s) -> %s (%s) in %.2f s\n"):format(r.input, r.input_format, human_bytes(r.input_bytes),
      r.output, human_bytes(r.output_bytes), r.seconds)
  end)
end

-- ---- run ---------------------------------------------------------------------------------------

-- Writes t as .npy (numpy's header, atomically: temp file + fsync + rename).
local function write_npy(path, t)
  if t:dtype() == "bf16" then t = t:to("f32") end
  torsh.save_npy(path, t)
end

local function read_npy(path)
  local t, err = torsh.data.npy_read(path)
  if not t then fail(err) end
  return t
end

local function run()
  need(1)
  local m = load(opts[1])
  local names = m:info().inputs
  local ins = {}
  local inputs = opts.input or {}
  if type(inputs) == "string" then inputs = { inputs } end
  local next_pos = 1       -- unnamed inputs fill the graph inputs in order
  for _, spec_ in ipairs(inputs) do
    local name, file = spec_:match("^([^=]+)=(.+)$")
    local pos
    if name then
      for k, n in ipairs(names) do if n == name then pos = k end end
      if not pos then fail(("no input named '%s' (inputs: %s)"):format(name, table.concat(names, ", "))) end
    else
      while ins[next_pos] do next_pos = next_pos + 1 end
      pos, file = next_pos, spec_
      if pos > #names then fail(("%d inputs given, the model takes %d (%s)"):format(#inputs, #names, table.concat(names, ", "))) end
    end
    if ins[pos] then fail(("input '%s' given twice"):format(names[pos])) end
    ins[pos] = read_npy(file)
  end
  if #inputs == 0 then
    if not opts.bench then cli.usage_error("model run: pass --input FILE.npy (or --bench for random inputs)") end
    local rok, r = pcall(m.random_inputs, m, int_option("batch", 1))
    if not rok then fail(r) end
    ins = r
  end
  for i = 1, #names do if not ins[i] then fail(("input %d ('%s') is missing"):format(i, names[i])) end end
  local ok, outs = pcall(function() return table.pack(m:run(table.unpack(ins, 1, #names))) end)
  if not ok then fail(outs) end
  local rep = { model = opts[1], outputs = {} }
  for i, name in ipairs(m:info().outputs) do
    rep.outputs[i] = { name = name, dtype = outs[i]:dtype(), shape = outs[i]:shape() }
  end
  if opts.output then
    for i = 1, outs.n do
      local path = i == 1 and opts.output or opts.output:gsub("%.npy$", "") .. "." .. i .. ".npy"
      local wok, werr = pcall(write_npy, path, outs[i])
      if not wok then fail(werr) end
      rep.outputs[i].file = path
    end
  end
  if opts.bench then      -- the harness of `torsh bench`: warm-up, repeats until stable or 2 s
    local runs = int_option("runs", 1)
    local r = require("torsh.bench").run(function() local y <close> = m:run(table.unpack(ins, 1, #names)) end,
      { warmup = 3, min_time = 2, min_runs = runs, max_runs = runs })
    rep.bench = { runs = r.n, median_ms = r.median * 1e3, min_ms = r.min * 1e3, batch = ins[1]:size(1),
                  threads = torsh.get_num_threads() }
  end
  cli.output(rep, opts.format, function(r)
    local lines = {}
    for _, o in ipairs(r.outputs) do
      lines[#lines + 1] = ("output %s %s %s%s"):format(o.name, o.dtype, shape_text(o.shape), o.file and (" -> " .. o.file) or "")
    end
    if r.bench then
      lines[#lines + 1] = ("latency: median %.3f ms, min %.3f ms over %d runs (batch %d, %d threads)"):format(
        r.bench.median_ms, r.bench.min_ms, r.bench.runs, r.bench.batch, r.bench.threads)
    end
    return table.concat(lines, "\n") .. "\n"
  end)
end

-- ---- validate -----------------------------------------------------------------------------------

local DATASET_NORM = { ["fashion-mnist"] = { 0.2860, 0.3530 }, mnist = { 0.1307, 0.3081 } }

local function validate()
  need(1)
  local data = torsh.data
  local dname, split = opts.dataset:match("^([^:]+):?(.*)$")
  split = split ~= "" and split or "test"
  local entry = data.registry[dname]
  if not entry then fail(("unknown data set '%s' (see torsh dataset ls)"):format(dname)) end
  local ok, set = pcall(entry.open, { train = split == "train" })
  if not ok then fail(set) end
  local m = load(opts[1])
  local ref = opts.reference and load(opts.reference)
  local norm = DATASET_NORM[dname] or { 0, 1 }
  if opts.normalize then
    local a, b = opts.normalize:match("^([^,]+),([^,]+)$")
    norm = { tonumber(a) or cli.usage_error("--normalize MEAN,STD"), tonumber(b) or cli.usage_error("--normalize MEAN,STD") }
  end
  local n = set:len()
  local limit = int_option("limit", 1)
  if limit then n = math.min(n, limit) end
  local batch = int_option("batch", 1) or 100
  local tolerance = opts.tolerance and tonumber(opts.tolerance)
  if opts.tolerance and (not tolerance or tolerance < 0) then
    cli.usage_error(("model validate: --tolerance takes a number >= 0, got '%s'"):format(opts.tolerance))
  end
  local in_shape = m:inputs()[1].shape
  local images, labels = set.images, set.labels
  local clock = torsh.clock or os.clock
  local correct, loss_sum, seen, secs = 0, 0, 0, 0
  local max_abs, sum_abs, count_abs, agree = 0, 0, 0, 0
  local tty = io.stderr.isatty and io.stderr:isatty()
  for start = 1, n, batch do
    local len = math.min(batch, n - start + 1)
    local x = images:narrow(1, start, len):to("f32") / 255
    x = (x - norm[1]) / norm[2]
    local shape = { len }
    for d = 2, #in_shape do shape[d] = type(in_shape[d]) == "number" and in_shape[d] or nil end
    if #in_shape == 2 then x = x:reshape(len, -1) elseif #in_shape == 4 then x = x:reshape(len, 1, x:size(2), x:size(3)) end
    local y = labels:narrow(1, start, len):to("i64")
    local t0 = clock()
    local rok, logits = pcall(m.run, m, x)
    secs = secs + (clock() - t0)
    if not rok then fail(logits) end
    local pred = logits:argmax(2)
    correct = correct + (pred:eq(y)):to("i64"):sum():item()
    loss_sum = loss_sum + torsh.nn.functional.cross_entropy(logits, y, { reduction = "sum" }):item()
    if ref then
      local rok2, r = pcall(ref.run, ref, x)
      if not rok2 then fail(opts.reference .. ": " .. tostring(r)) end
      local d = (logits:to("f64") - r:to("f64")):abs()
      max_abs = math.max(max_abs, d:max():item())
      sum_abs = sum_abs + d:sum():item()
      count_abs = count_abs + d:numel()
      agree = agree + pred:eq(r:argmax(2)):to("i64"):sum():item()
    end
    seen = seen + len
    if tty then io.stderr:write(("\rvalidate: %d/%d"):format(seen, n)) end
  end
  if tty then io.stderr:write("\r\27[K") end
  if seen == 0 then fail(("%s:%s has no samples"):format(dname, split)) end
  local rep = { model = opts[1], dataset = dname, split = split, samples = seen,
                accuracy = correct / seen, loss = loss_sum / seen,
                latency_ms_per_batch = secs / math.ceil(seen / batch) * 1e3, batch = batch,
                samples_per_second = seen / secs }
  if ref then
    rep.reference = { model = opts.reference, max_abs_diff = max_abs, mean_abs_diff = sum_abs / count_abs,
                      argmax_agreement = agree / seen }
  end
  cli.output(rep, opts.format, function(r)
    local s = ("%s on %s:%s (%d samples): accuracy %.4f, loss %.4f, %.2f ms/batch of %d (%.0f samples/s)\n"):format(
      r.model, r.dataset, r.split, r.samples, r.accuracy, r.loss, r.latency_ms_per_batch, r.batch, r.samples_per_second)
    if r.reference then
      s = s .. ("vs %s: max abs diff %.3g, mean abs diff %.3g, argmax agreement %.4f\n"):format(r.reference.model,
        r.reference.max_abs_diff, r.reference.mean_abs_diff, r.reference.argmax_agreement)
    end
    return s
  end)
  if ref and tolerance and max_abs > tolerance then
    io.stderr:write(("torsh: model validate: max abs difference %.3g exceeds --tolerance %s\n"):format(max_abs, opts.tolerance))
    os.exit(1)
  end
end

-- ---- diff ----------------------------------------------------------------------------------------

local function diff()
  need(2)
  local function weights(path)
    local ok, sd, names = pcall(model.load_weights, path)
    if not ok then fail(sd) end
    return sd, names
  end
  local a, an = weights(opts[1])
  local b, bn = weights(opts[2])
  local atol = tonumber(opts.atol) or 0
  local rows, same, changed = {}, 0, 0
  local seen = {}
  for _, name in ipairs(an) do
    seen[name] = true
    local x, y = a[name], b[name]
    if not y then rows[#rows + 1] = { name = name, status = "only in A", shape_a = x:shape() }; changed = changed + 1
    elseif table.concat(x:shape(), ",") ~= table.concat(y:shape(), ",") then
      rows[#rows + 1] = { name = name, status = "shape differs", shape_a = x:shape(), shape_b = y:shape() }; changed = changed + 1
    else
      local d = (x:to("f64") - y:to("f64")):abs()
      local mx = d:numel() > 0 and d:max():item() or 0
      local status = x:dtype() ~= y:dtype() and "dtype differs" or (mx > atol and "values differ" or "same")
      if status == "same" then same = same + 1 else changed = changed + 1 end
      if status ~= "same" then
        rows[#rows + 1] = { name = name, status = status, dtype_a = x:dtype(), dtype_b = y:dtype(), shape_a = x:shape(),
                            max_abs = mx, mean_abs = d:numel() > 0 and d:mean():item() or 0 }
      end
    end
  end
  for _, name in ipairs(bn) do
    if not seen[name] then rows[#rows + 1] = { name = name, status = "only in B", shape_b = b[name]:shape() }; changed = changed + 1 end
  end
  local rep = { a = opts[1], b = opts[2], same = same, different = changed, tensors = rows }
  cli.output(rep, opts.format, function(r)
    local head = ("%s vs %s: %d tensors the same, %d different\n"):format(r.a, r.b, r.same, r.different)
    if #r.tensors == 0 then return head end
    local t = {}
    for _, row in ipairs(r.tensors) do
      t[#t + 1] = { name = row.name, status = row.status, shape = shape_text(row.shape_a or row.shape_b),
                    max = row.max_abs and ("%.3g"):format(row.max_abs) or "", mean = row.mean_abs and ("%.3g"):format(row.mean_abs) or "" }
    end
    return head .. cli.table(t, { { "name", "TENSOR" }, { "status", "STATUS" }, { "shape", "SHAPE" },
                                  { "max", "MAX ABS" }, { "mean", "MEAN ABS" } })
  end)
  if changed > 0 then os.exit(1) end
end

local handlers = { inspect = inspect, convert = convert, run = run, validate = validate, diff = diff }
handlers[SUB]()
