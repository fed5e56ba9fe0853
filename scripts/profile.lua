-- profile a Lua script, or one inference of a model file, and write traces and reports
--   torsh profile SCRIPT.lua [args] --trace t.json --speedscope s.json --folded f.txt --flame f.svg --html r.html
--   torsh profile MODEL.onnx --input x.npy --html r.html
-- Profile options may come before or after the script; the script gets every
-- argument the profiler does not know, and everything after `--`.
local cli = require "torsh.cli"
local profiler = require "torsh.profiler"
local export = require "torsh.profiler.export"

local spec = {
  name = "profile",
  positional = "SCRIPT.lua [args] | MODEL --input X.npy",
  summary = "Runs a Lua script (or one inference of a model file) under torsh's profiler and writes\n" ..
            "what it recorded: every op called from Lua and every graph node, with input shapes,\n" ..
            "dtypes, bytes allocated, Lua call stacks; DataLoader batches as \"data\" ranges.\n" ..
            "With no output option the op summary and the bottleneck report are printed.\n" ..
            "A script that fails still gets its outputs written (exit status 1; os.exit(n) keeps n).\n" ..
            "Options the profiler knows are taken wherever they stand; put the script's own\n" ..
            "options after `--` when their names clash (e.g. --schedule, --format).",
  options = {
    { "trace", "FILE", help = "Chrome Trace Event JSON (Perfetto, chrome://tracing)" },
    { "speedscope", "FILE", help = "speedscope JSON (evented, one profile per thread)" },
    { "folded", "FILE", help = "folded stacks for flamegraph.pl (counts: ns of self time)" },
    { "flame", "FILE", help = "SVG flame graph of self time by stack" },
    { "html", "FILE", help = "one self-contained interactive HTML report" },
    { "summary", flag = true, help = "print the op summary (default when no file is asked for)" },
    { "summary-out", "FILE", help = "write the op summary to FILE instead of printing it" },
    { "format", "table|json", default = "table", choices = { "table", "json" }, help = "summary format" },
    { "sort", "KEY", default = "self", choices = { "self", "total", "count", "mean", "name", "alloc" },
      help = "summary order: self, total, count, mean, name, alloc" },
    { "limit", "N", default = "30", help = "summary rows (0: all)" },
    { "group-by-shape", flag = true, help = "summary rows per op and input shapes" },
    { "bottlenecks", flag = true, help = "print the bottleneck report (default when no file is asked for)" },
    { "leaks", flag = true, help = "track allocations and print those still alive at the end" },
    { "no-stack", flag = true, help = "do not record Lua call stacks" },
    { "no-memory", flag = true, help = "do not count bytes per event nor sample memory" },
    { "max-events", "N", help = "ring buffer size (default 1048576; the oldest events are dropped)" },
    { "schedule", "SPEC", help = "record some steps only (torch.profiler.schedule's rule):\n" ..
      string.rep(" ", 31) .. "wait=N,warmup=N,active=N[,repeat=N][,skip_first=N]; a step is a\n" ..
      string.rep(" ", 31) .. "torsh.profiler.step() call, else a DataLoader batch" },
    { "input", "FILE[,FILE]", help = "model inputs (.npy), in the model's input order" },
    { "warmup", "N", default = "1", help = "model: runs before the profiled one" },
  },
  examples = {
    "torsh profile recipes/quickstart.lua --no-train --trace t.json --html r.html",
    "torsh profile recipes/fashion_mnist.lua --epochs 1 --schedule wait=5,warmup=2,active=5 --html r.html",
    "torsh profile my.lua --summary --group-by-shape --sort total --format json",
    "torsh profile model.onnx --input x.npy --html r.html",
  },
}

-- ---- arguments ---------------------------------------------------------------------------------------
local known = {}
for _, o in ipairs(spec.options) do known[o[1]] = o end
local prof_args, target, script_args = {}, nil, {}
do
  local i, rest = 1, false
  while i <= #arg do
    local a = arg[i]
    if rest then
      script_args[#script_args + 1] = a
    elseif a == "--" and target then
      rest = true
    elseif a == "--help" or a == "-h" then
      if target then script_args[#script_args + 1] = a else prof_args[#prof_args + 1] = a end
    elseif a:sub(1, 2) == "--" and known[(a:sub(3):match("^[^=]+"))] then
      local name = a:sub(3):match("^[^=]+")
      prof_args[#prof_args + 1] = a
      if not known[name].flag and not a:find("=", 1, true) then
        i = i + 1
        if arg[i] == nil then cli.usage_error("profile: option --" .. name .. " needs a value") end
        prof_args[#prof_args + 1] = arg[i]
      end
    elseif not target then
      if a:sub(1, 1) == "-" and a ~= "-" then
        cli.usage_error(string.format("profile: unknown option '%s' (see torsh profile --help)", a))
      end
      target = a
    else
      script_args[#script_args + 1] = a
    end
    i = i + 1
  end
end
local opts = cli.parse(prof_args, spec)
if not target then cli.usage_error("profile: missing SCRIPT.lua or MODEL (see torsh profile --help)") end

local function count_option(name, min)
  local v = opts[name]
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < min then cli.usage_error(string.format("profile: --%s needs an integer >= %d, got '%s'", name, min, v)) end
  return n
end

local function parse_schedule(s)
  if not s then return nil end
  local out, allowed = {}, { wait = true, warmup = true, active = true, ["repeat"] = true, skip_first = true }
  for item in s:gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*(%d+)%s*$")
    if not k or not allowed[k] then
      cli.usage_error(string.format("profile: --schedule '%s': expected wait=N,warmup=N,active=N[,repeat=N][,skip_first=N] " ..
        "(a script option named --schedule goes after --)", s))
    end
    out[k] = math.tointeger(tonumber(v))
  end
  if not out.active or out.active < 1 then cli.usage_error("profile: --schedule needs active=N with N >= 1") end
  return out
end

local limit = count_option("limit", 0)
local warmup = count_option("warmup", 0)
local start_opts = {
  with_stack = not opts["no-stack"], profile_memory = not opts["no-memory"], record_shapes = true,
  track_allocs = opts.leaks or false, max_events = count_option("max-events", 1),
  schedule = parse_schedule(opts.schedule), title = "torsh profile: " .. target,
  hide_sources = { debug.getinfo(1, "S").short_src },     -- this runner's frames stay out of the stacks
}
start_opts.step_on_batch = start_opts.schedule ~= nil

local function fail(msg, code)
  io.stderr:write("torsh: profile: ", msg, "\n")
  os.exit(code or 1)
end

-- ---- running the target --------------------------------------------------------------------------------
local EXIT = setmetatable({}, { __tostring = function() return "os.exit" end })
local run_status = 0          -- exit status the target asked for (or 1 on error)
local run_error = nil

-- Runs fn(...) under the profiler; os.exit inside it ends the run instead of the process.
local function profiled(fn, ...)
  local real_exit = os.exit
  os.exit = function(code)
    run_status = code == true and 0 or code == false and 1 or math.tointeger(code) or 0
    error(EXIT, 0)
  end
  local ok, err = pcall(profiler.start, start_opts)
  if not ok then
    os.exit = real_exit
    fail(tostring(err))
  end
  local res = table.pack(xpcall(fn, function(e)
    if e == EXIT then return e end
    return debug.traceback(tostring(e), 2)
  end, ...))
  local p = profiler.stop()
  os.exit = real_exit
  if not res[1] and res[2] ~= EXIT then
    run_error, run_status = res[2], 1
  end
  return p
end

local p
if target:match("%.lua$") then
  local chunk, err = loadfile(target)
  if not chunk then fail(err) end
  local new_arg = { [0] = target }
  for i, a in ipairs(script_args) do new_arg[i] = a end
  for i = -1, -#arg - 1, -1 do if arg[i] == nil then break end new_arg[i] = arg[i] end
  _G.arg = new_arg
  p = profiled(chunk, table.unpack(script_args))
else
  if #script_args > 0 then fail(string.format("a model takes no arguments, got '%s' (did you mean --input?)", script_args[1]), 2) end
  local ok, model_lib = pcall(require, "torsh.model")
  if not ok then
    fail(string.format("%s: profiling a model needs torsh.model (model loading), which is not available: %s",
      target, tostring(model_lib)))
  end
  local mok, model = pcall(model_lib.load, target)
  if not mok then fail(string.format("cannot load %s: %s", target, tostring(model))) end
  local inputs = {}
  if opts.input then
    for path in opts.input:gmatch("[^,]+") do
      local x, rerr = torsh._data.npy_read(path)
      if not x then fail(string.format("--input %s: %s", path, tostring(rerr))) end
      inputs[#inputs + 1] = x
    end
  else
    -- random inputs of the declared shapes (symbolic dims become 1)
    for _, inp in ipairs(model:inputs()) do
      local shape = {}
      for i, d in ipairs(inp.shape or {}) do shape[i] = (math.type(d) == "integer" and d > 0) and d or 1 end
      local x = torsh.randn(shape)
      if inp.dtype and inp.dtype ~= "f32" then x = x:to(inp.dtype) end
      inputs[#inputs + 1] = x
    end
    io.stderr:write(string.format("torsh: profile: no --input given: random inputs of the declared shapes\n"))
  end
  for _ = 1, warmup or 1 do
    local rok, rerr = pcall(model.run, model, table.unpack(inputs))
    if not rok then fail(string.format("%s: inference failed: %s", target, tostring(rerr))) end
  end
  p = profiled(function() return profiler.range("inference", model.run, model, table.unpack(inputs)) end)
end

-- ---- outputs -----------------------------------------------------------------------------------------------
if run_error then io.stderr:write("torsh: profile: ", target, " failed: ", tostring(run_error), "\n") end
local status = run_status
local written = {}
local function write(option, method)
  local path = opts[option]
  if not path then return end
  local ok, text = pcall(method, p)
  if not ok then
    io.stderr:write(string.format("torsh: profile: --%s: %s\n", option, tostring(text)))
    status = status ~= 0 and status or 1
    return
  end
  local wok, werr = export.write(path, text)
  if wok then written[#written + 1] = path
  else
    io.stderr:write("torsh: profile: ", werr, "\n")
    status = status ~= 0 and status or 1
  end
end
write("trace", p.chrome_trace)
write("speedscope", p.speedscope)
write("folded", p.folded)
write("flame", p.flamegraph)
write("html", p.html)

local any_file = opts.trace or opts.speedscope or opts.folded or opts.flame or opts.html or opts["summary-out"]
local show_summary = opts.summary or opts["summary-out"] or not any_file
if show_summary then
  local text = p:summary { group_by_shape = opts["group-by-shape"], sort = opts.sort, format = opts.format,
                           limit = limit ~= 0 and limit or nil }
  if opts["summary-out"] then
    local wok, werr = export.write(opts["summary-out"], text)
    if wok then written[#written + 1] = opts["summary-out"]
    else
      io.stderr:write("torsh: profile: ", werr, "\n")
      status = status ~= 0 and status or 1
    end
  else
    io.write(opts.format == "json" and "" or "\n", text)
  end
end
if (opts.bottlenecks or not any_file) and opts.format ~= "json" then io.write("\n", p:bottleneck_report()) end
if opts.leaks and opts.format ~= "json" then io.write("\n", p:leak_report()) end
if #written > 0 then
  io.stderr:write(string.format("torsh: profile: %d events%s; wrote %s\n", #p.events,
    p.dropped > 0 and string.format(" (%d dropped)", p.dropped) or "", table.concat(written, ", ")))
end
io.stdout:flush()
os.exit(status)
