-- benchmark the cases a Lua script declares, or a model file's inference; significance tests; baselines
local cli = require "torsh.cli"
local bench = require "torsh.bench"

local opts = cli.parse(arg, {
  name = "bench",
  positional = "SCRIPT.lua",
  summary = "Runs the benchmark cases a Lua script declares and prints their statistics\n" ..
            "(median, 95% CI of the median, IQR, mean, stddev, min, max, peak tensor memory)\n" ..
            "and, for each comparison, the ratio of medians with a significance verdict\n" ..
            "(Mann-Whitney U p < 0.05 and a bootstrap 95% CI of the ratio excluding 1).\n\n" ..
            "The script returns a table:\n" ..
            "  return {\n" ..
            "    min_time = 0.5,                 -- optional defaults for bench.run\n" ..
            "    cases   = { { name = \"add\", fn = function() ... end, setup = function() ... end } },\n" ..
            "    compare = { { name = \"mm\", a = function() ... end, b = function() ... end } },\n" ..
            "  }\n" ..
            "With --baseline FILE, exits 1 and lists the cases whose median is slower than the\n" ..
            "baseline's by more than the tolerance with a CI lower bound above it.\n\n" ..
            "A model file (.onnx, .torsh, or weights with --arch) is benchmarked instead: inference\n" ..
            "on random inputs over every combination of --batch and --threads; --compare OTHER\n" ..
            "times a second model on the same inputs and gives the significance verdict.",
  options = {
    { "format", "table|markdown|csv|json|jsonl", default = "table",
      choices = { "table", "markdown", "csv", "json", "jsonl" }, help = "output format" },
    { "save-baseline", "FILE", help = "write the results to FILE (JSON) as a baseline" },
    { "baseline", "FILE", help = "compare against a saved baseline; exit 1 on regressions" },
    { "tolerance", "X", default = "0.05", help = "relative slowdown allowed by --baseline" },
    { "min-time", "SECONDS", help = "minimum timed seconds per case (default 1, or the script's)" },
    { "max-runs", "N", help = "at most N timed runs per case (default 1000)" },
    { "batch", "N,N,...", default = "1", help = "MODEL: batch sizes to sweep" },
    { "threads", "N,N,...", help = "MODEL: thread counts to sweep (default: the current count)" },
    { "dtype", "f32", default = "f32", help = "MODEL: input/compute dtype (f32; others are refused for now)" },
    { "arch", "NAME|FILE.lua", help = "MODEL: architecture for weight files (see torsh model --help)" },
    { "compare", "OTHER", help = "MODEL: a second model to compare with (same inputs, significance test)" },
    { "no-optimize", flag = true, help = "MODEL: run the graph as loaded (no conv+bn folding, fusion, Winograd)" },
  },
  examples = {
    "torsh bench bench/examples/matmul_vs_add.lua",
    "torsh bench bench/examples/matmul_vs_add.lua --format markdown",
    "torsh bench my_cases.lua --save-baseline base.json",
    "torsh bench my_cases.lua --baseline base.json --tolerance 0.1   # in CI",
    "torsh bench resnet18.onnx --batch 1,8 --threads 1,2",
    "torsh bench resnet18.onnx --compare resnet18.torsh --format markdown",
  },
})

local function number_option(name)
  local v = opts[name]
  if v == nil then return nil end
  local x = tonumber(v)
  if not x or x < 0 then cli.usage_error(string.format("bench: --%s needs a number >= 0, got '%s'", name, v)) end
  return x
end

local script = opts[1]
if not script then cli.usage_error("bench: missing SCRIPT.lua (see torsh bench --help)") end
if #opts > 1 then cli.usage_error("bench: one script at a time, got '" .. opts[2] .. "'") end
local tolerance = number_option("tolerance")
local min_time, max_runs = number_option("min-time"), number_option("max-runs")

-- ---- a model file: a sweep over batch x threads, or a comparison ------------------------

local function int_list(name, v)
  local out = {}
  for x in tostring(v):gmatch("[^,]+") do
    out[#out + 1] = math.tointeger(tonumber(x)) or cli.usage_error(string.format("bench: --%s takes integers, got '%s'", name, x))
  end
  return out
end

local function model_run_opts(name)
  return { name = name, min_time = min_time, max_runs = max_runs and math.floor(max_runs) or nil }
end

local function model_spec(path)
  if opts.dtype ~= "f32" then
    cli.usage_error(string.format("bench: --dtype %s: converting a model's weights to another dtype is not supported yet (f32 only)", opts.dtype))
  end
  local model = require "torsh.model"
  local function load(p)
    local ok, m = pcall(model.load, p, { arch = opts.arch, optimize = not opts["no-optimize"] })
    if not ok then
      io.stderr:write("torsh: bench: ", tostring(m), "\n")
      os.exit(1)
    end
    return m
  end
  local m = load(path)
  local function inputs(batch)
    local ok, ins = pcall(m.random_inputs, m, batch)
    if not ok then
      io.stderr:write("torsh: bench: ", tostring(ins), "\n")
      os.exit(1)
    end
    return ins
  end
  local batches = int_list("batch", opts.batch)
  local threads = opts.threads and int_list("threads", opts.threads) or { torsh.get_num_threads() }
  local report = { cases = {}, comparisons = {}, model = path }
  if opts.compare then
    local other = load(opts.compare)
    for _, b in ipairs(batches) do
      for _, t in ipairs(threads) do
        torsh.set_num_threads(t)
        local ins = inputs(b)
        local o = model_run_opts(string.format("%s vs %s batch=%d threads=%d", path, opts.compare, b, t))
        report.comparisons[#report.comparisons + 1] = bench.compare(
          function() local y <close> = m:run(table.unpack(ins)) end,
          function() local y <close> = other:run(table.unpack(ins)) end, o)
      end
    end
    return report
  end
  report.cases = bench.sweep(function(p)
    local ins = inputs(p.batch)
    return function() local y <close> = m:run(table.unpack(ins)) end
  end, { batch = batches, threads = threads }, model_run_opts(nil))
  return report
end

if not script:match("%.lua$") then
  local report = model_spec(script)
  io.write(bench.format(report, opts.format))
  if opts["save-baseline"] then
    local ok, serr = bench.save_baseline(report, opts["save-baseline"])
    if not ok then io.stderr:write("torsh: bench: ", serr, "\n"); os.exit(1) end
  end
  os.exit(0)
end

local chunk, err = loadfile(script)
if not chunk then
  io.stderr:write("torsh: bench: ", err, "\n")
  os.exit(1)
end
local spec = chunk()
if type(spec) ~= "table" then
  io.stderr:write("torsh: bench: ", script, " must return a table { cases = {...}, compare = {...} }\n")
  os.exit(1)
end

local function run_opts(entry, name)
  return {
    name = name, setup = entry.setup,
    warmup = entry.warmup or spec.warmup,
    min_time = min_time or entry.min_time or spec.min_time,
    max_runs = max_runs and math.floor(max_runs) or entry.max_runs or spec.max_runs,
    min_runs = entry.min_runs or spec.min_runs,
    target_spread = entry.target_spread or spec.target_spread,
  }
end

local report = { cases = {}, comparisons = {} }
for i, c in ipairs(spec.cases or {}) do
  local name = c.name or ("case" .. i)
  if type(c.fn) ~= "function" then error(string.format("bench: case '%s' has no fn", name), 0) end
  report.cases[#report.cases + 1] = bench.run(c.fn, run_opts(c, name))
end
for i, c in ipairs(spec.compare or {}) do
  local name = c.name or ("compare" .. i)
  if type(c.a) ~= "function" or type(c.b) ~= "function" then
    error(string.format("bench: comparison '%s' needs functions a and b", name), 0)
  end
  local o = run_opts(c, name)
  o.setup_a, o.setup_b = c.setup_a, c.setup_b
  report.comparisons[#report.comparisons + 1] = bench.compare(c.a, c.b, o)
end

io.write(bench.format(report, opts.format))

if opts["save-baseline"] then
  local ok, serr = bench.save_baseline(report, opts["save-baseline"])
  if not ok then
    io.stderr:write("torsh: bench: ", serr, "\n")
    os.exit(1)
  end
end

if opts.baseline then
  local regressions, berr = bench.check_baseline(report, opts.baseline, { tolerance = tolerance })
  if not regressions then
    io.stderr:write("torsh: bench: ", berr, "\n")
    os.exit(1)
  end
  if #regressions > 0 then
    io.stderr:write(string.format("torsh: bench: %d regression(s) against %s (tolerance %g):\n",
      #regressions, opts.baseline, tolerance))
    for _, r in ipairs(regressions) do
      io.stderr:write(string.format("  %s: median %s vs baseline %s (x%.2f, CI low %s)\n", r.name,
        bench.time_str(r.median), bench.time_str(r.baseline), r.ratio, bench.time_str(r.ci_low)))
    end
    os.exit(1)
  end
  io.stderr:write(string.format("torsh: bench: no regressions against %s\n", opts.baseline))
end
