-- torsh/bench.lua — the benchmark harness: timing with warm-up and automatic
-- repetition, robust statistics (median, IQR, 95% CI of the median), a
-- significance test between two variants (Mann-Whitney U + bootstrap CI of
-- the ratio of medians), parameter sweeps, output as table / markdown / csv /
-- json / jsonl, and JSON baselines for CI regression checks.
-- Uses torsh.clock, torsh.memory, torsh.cli (JSON writer) and cjson (reader).
--
--   local bench = require "torsh.bench"
--   local r = bench.run(function() a:matmul(b) end, { min_time = 0.5 })
--   local c = bench.compare(fn_a, fn_b)        -- c.verdict: "a faster", ...
--   io.write(bench.format({ r }, "markdown"))
--
-- All times are in seconds. opts.clock (a function returning seconds) may
-- replace torsh.clock, which tests use to inject a deterministic timer.
local torsh = require "torsh"
local cli = require "torsh.cli"

local M = {}

local DEFAULTS = { warmup = 2, min_time = 1.0, target_spread = 0.02, min_runs = 5, max_runs = 1000 }
local WARN_SPREAD = 0.10

local function opt(opts, key) return opts[key] == nil and DEFAULTS[key] or opts[key] end

-- ---- statistics ---------------------------------------------------------------

local function sorted_copy(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  return s
end

--- M.quantile(sorted, p): linear interpolation between order statistics
--- (NumPy's default, "type 7").
function M.quantile(s, p)
  local n = #s
  if n == 0 then return nil end
  local h = (n - 1) * p + 1
  local lo = math.floor(h)
  if lo >= n then return s[n] end
  return s[lo] + (h - lo) * (s[lo + 1] - s[lo])
end

--- M.median_ci_indexes(n) -> lo, hi: 1-based order statistics whose interval
--- [x(lo), x(hi)] covers the median with probability >= 95% (distribution-free,
--- from Binomial(n, 1/2)); for n < 6 no such pair exists and (1, n) is returned.
function M.median_ci_indexes(n)
  local logp, cdf, lo = -n * math.log(2), 0, 1
  for k = 0, n do
    if k > 0 then logp = logp + math.log((n - k + 1) / k) end
    cdf = cdf + math.exp(logp)          -- cdf = P(B <= k)
    if cdf > 0.025 then break end
    lo = k + 1                          -- P(B <= lo - 1) <= 0.025
  end
  if lo > (n + 1) // 2 then lo = (n + 1) // 2 end
  return lo, n - lo + 1
end

--- M.stats(samples) -> { n, median, q1, q3, iqr, rel_iqr, mean, stddev (n-1),
--- min, max, ci_low, ci_high, ci_index = {lo, hi} }.
function M.stats(samples)
  local s, n = sorted_copy(samples), #samples
  assert(n > 0, "bench.stats: no samples")
  local sum = 0
  for _, x in ipairs(s) do sum = sum + x end
  local mean, ss = sum / n, 0
  for _, x in ipairs(s) do ss = ss + (x - mean) ^ 2 end
  local r = { n = n, mean = mean, stddev = n > 1 and math.sqrt(ss / (n - 1)) or 0,
              min = s[1], max = s[n], median = M.quantile(s, 0.5),
              q1 = M.quantile(s, 0.25), q3 = M.quantile(s, 0.75) }
  r.iqr = r.q3 - r.q1
  r.rel_iqr = r.median > 0 and r.iqr / r.median or 0
  local lo, hi = M.median_ci_indexes(n)
  r.ci_low, r.ci_high, r.ci_index = s[lo], s[hi], { lo, hi }
  return r
end

local function rel_spread(samples)
  local s = sorted_copy(samples)
  local med = M.quantile(s, 0.5)
  if med <= 0 then return 0 end
  return (M.quantile(s, 0.75) - M.quantile(s, 0.25)) / med
end

-- erfc(x) for x >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
local function erfc(x)
  local t = 1 / (1 + 0.5 * x)
  return t * math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))))
end

--- M.mann_whitney(a, b) -> p, u, z: two-sided Mann-Whitney U test with the
--- normal approximation, tie correction and continuity correction (what
--- scipy.stats.mannwhitneyu(a, b, method="asymptotic") computes); u is U of a.
function M.mann_whitney(a, b)
  local n1, n2 = #a, #b
  local all = {}
  for _, x in ipairs(a) do all[#all + 1] = { x, 1 } end
  for _, x in ipairs(b) do all[#all + 1] = { x, 2 } end
  table.sort(all, function(p, q) return p[1] < q[1] end)
  local n, r1, ties, i = #all, 0, 0, 1
  while i <= n do
    local j = i
    while j < n and all[j + 1][1] == all[i][1] do j = j + 1 end
    local rank, t = (i + j) / 2, j - i + 1
    for k = i, j do if all[k][2] == 1 then r1 = r1 + rank end end
    ties = ties + t ^ 3 - t
    i = j + 1
  end
  local u = r1 - n1 * (n1 + 1) / 2
  local mu = n1 * n2 / 2
  local var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
  if var <= 0 then return 1.0, u, 0 end
  local z = (math.abs(u - mu) - 0.5) / math.sqrt(var)
  if z < 0 then z = 0 end
  return math.min(1.0, erfc(z / math.sqrt(2))), u, z
end

-- A small deterministic generator (splitmix64) so the bootstrap neither
-- depends on nor disturbs math.random or torsh's RNG.
local function rng(seed)
  local state = seed
  return function(n)
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 1) % n + 1
  end
end

local function resample_median(xs, next_index)
  local s = {}
  for i = 1, #xs do s[i] = xs[next_index(#xs)] end
  table.sort(s)
  return M.quantile(s, 0.5)
end

--- M.bootstrap_ratio_ci(a, b [, {resamples=1000, seed=42}]) -> lo, hi: the
--- percentile bootstrap 95% CI of median(b) / median(a).
function M.bootstrap_ratio_ci(a, b, opts)
  opts = opts or {}
  local next_index = rng(opts.seed or 42)
  local ratios = {}
  for i = 1, opts.resamples or 1000 do
    local ma = resample_median(a, next_index)
    local mb = resample_median(b, next_index)
    ratios[i] = ma > 0 and mb / ma or math.huge
  end
  table.sort(ratios)
  return M.quantile(ratios, 0.025), M.quantile(ratios, 0.975)
end

-- ---- running ------------------------------------------------------------------

local function finish_result(samples, peak)
  local r = M.stats(samples)
  r.samples = samples
  r.peak_memory = peak
  if r.rel_iqr > WARN_SPREAD then
    r.warning = string.format("noisy: relative IQR %.1f%% > %.0f%%", 100 * r.rel_iqr, 100 * WARN_SPREAD)
  end
  return r
end

local function should_stop(opts, n, elapsed, spreads_ok)
  if n >= opt(opts, "max_runs") then return true end
  if n < opt(opts, "min_runs") then return false end
  return elapsed >= opt(opts, "min_time") or spreads_ok()
end

local function timed(fn, setup, clock)
  if setup then setup() end
  local t0 = clock()
  fn()
  return clock() - t0
end

local function memory_start()
  torsh.reset_peak_memory()
  return torsh.memory().live
end

local function memory_peak(live0) return math.max(0, torsh.memory().peak - live0) end

--- M.run(fn [, opts]) -> result: opts.warmup (2) untimed runs, then timed runs
--- until, after at least opts.min_runs (5), opts.min_time (1 s) has passed or
--- the relative IQR is below opts.target_spread (0.02); at most opts.max_runs
--- (1000). opts.setup() runs untimed before every run; opts.name names the
--- result. result.peak_memory: peak tensor bytes above the live bytes at start.
function M.run(fn, opts)
  opts = opts or {}
  local clock = opts.clock or torsh.clock
  for _ = 1, opt(opts, "warmup") do
    if opts.setup then opts.setup() end
    fn()
  end
  local live0 = memory_start()
  local samples, start = {}, clock()
  repeat
    samples[#samples + 1] = timed(fn, opts.setup, clock)
  until should_stop(opts, #samples, clock() - start,
    function() return rel_spread(samples) < opt(opts, "target_spread") end)
  local r = finish_result(samples, memory_peak(live0))
  r.name = opts.name
  return r
end

local function warm_and_measure(fn, setup, warmup)
  local live0 = memory_start()
  for _ = 1, math.max(1, warmup) do
    if setup then setup() end
    fn()
  end
  return memory_peak(live0)
end

--- M.compare(a_fn, b_fn [, opts]) -> { a, b, ratio = median_b / median_a,
--- p_value, u, ratio_ci = {lo, hi}, verdict }. Runs alternate a, b, a, b ... so
--- load changes hit both alike; the stopping rule is run()'s applied to both.
--- Significant when p < 0.05 and the bootstrap CI excludes 1. opts.setup_a /
--- opts.setup_b run untimed before each run of a / b; peak memory comes from
--- the warm-up runs (at least one). opts.resamples, opts.seed: the bootstrap's.
function M.compare(a_fn, b_fn, opts)
  opts = opts or {}
  local clock = opts.clock or torsh.clock
  local peak_a = warm_and_measure(a_fn, opts.setup_a, opt(opts, "warmup"))
  local peak_b = warm_and_measure(b_fn, opts.setup_b, opt(opts, "warmup"))
  local sa, sb, start = {}, {}, clock()
  local target = opt(opts, "target_spread")
  repeat
    sa[#sa + 1] = timed(a_fn, opts.setup_a, clock)
    sb[#sb + 1] = timed(b_fn, opts.setup_b, clock)
  until should_stop(opts, #sa, clock() - start,
    function() return rel_spread(sa) < target and rel_spread(sb) < target end)
  local c = { name = opts.name, a = finish_result(sa, peak_a), b = finish_result(sb, peak_b) }
  c.a.name = opts.name and (opts.name .. ".a") or "a"
  c.b.name = opts.name and (opts.name .. ".b") or "b"
  c.ratio = c.a.median > 0 and c.b.median / c.a.median or math.huge
  c.p_value, c.u = M.mann_whitney(sa, sb)
  local lo, hi = M.bootstrap_ratio_ci(sa, sb, { resamples = opts.resamples, seed = opts.seed })
  c.ratio_ci = { lo, hi }
  c.verdict = M.verdict(c.p_value, lo, hi)
  return c
end

--- M.verdict(p, ratio_lo, ratio_hi) -> "a faster" | "b faster" | "no significant difference".
function M.verdict(p, lo, hi)
  if p < 0.05 and lo > 1 then return "a faster" end
  if p < 0.05 and hi < 1 then return "b faster" end
  return "no significant difference"
end

local function grid_combinations(grid)
  local keys = {}
  for k in pairs(grid) do keys[#keys + 1] = k end
  table.sort(keys)
  local rows = { {} }
  for _, k in ipairs(keys) do
    local next_rows = {}
    for _, row in ipairs(rows) do
      for _, v in ipairs(grid[k]) do
        local r = {}
        for kk, vv in pairs(row) do r[kk] = vv end
        r[k] = v
        next_rows[#next_rows + 1] = r
      end
    end
    rows = next_rows
  end
  return rows, keys
end

local function params_label(params, keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(params[k]) end
  return table.concat(parts, " ")
end

--- M.sweep(fn_of_params, grid [, opts]) -> list of results, one per
--- combination of the grid's values (keys in sorted order, e.g. grid
--- {batch={1,8}, threads={1,2}} gives 4). fn_of_params(params) returns the
--- function to time (and optionally a setup function). A `threads` key sets
--- torsh.set_num_threads for that combination; the count is restored after.
function M.sweep(fn_of_params, grid, opts)
  opts = opts or {}
  local combos, keys = grid_combinations(grid)
  local saved_threads = torsh.get_num_threads()
  local results = {}
  local ok, err = pcall(function()
    for _, params in ipairs(combos) do
      if params.threads then torsh.set_num_threads(params.threads) end
      local fn, setup = fn_of_params(params)
      local o = setmetatable({ setup = setup or opts.setup, name = params_label(params, keys) }, { __index = opts })
      local r = M.run(fn, o)
      r.params = params
      results[#results + 1] = r
      torsh.set_num_threads(saved_threads)
    end
  end)
  torsh.set_num_threads(saved_threads)
  if not ok then error(err, 0) end
  return results
end

-- ---- output ---------------------------------------------------------------------

local STAT_KEYS = { "n", "median", "q1", "q3", "iqr", "mean", "stddev", "min", "max", "ci_low", "ci_high",
                    "peak_memory" }

-- A report is { cases = {...}, comparisons = {...} }; a plain list is taken as
-- a list of cases (compare() results in it go to comparisons).
local function as_report(results)
  if results.cases or results.comparisons then
    return { cases = results.cases or {}, comparisons = results.comparisons or {} }
  end
  local rep = { cases = {}, comparisons = {} }
  for _, r in ipairs(results) do
    local list = r.verdict and rep.comparisons or rep.cases
    list[#list + 1] = r
  end
  return rep
end

local function case_record(r)
  local rec = { kind = "case", name = r.name or "?" , warning = r.warning }
  for _, k in ipairs(STAT_KEYS) do rec[k] = r[k] end
  if r.params then
    rec.params = {}
    for k, v in pairs(r.params) do rec.params[k] = v end
  end
  return rec
end

local function comparison_record(c)
  return { kind = "comparison", name = c.name or "?", a = case_record(c.a), b = case_record(c.b),
           ratio = c.ratio, ratio_ci_low = c.ratio_ci[1], ratio_ci_high = c.ratio_ci[2],
           p_value = c.p_value, verdict = c.verdict }
end

--- M.records(results) -> cases, comparisons: plain data (no samples) for output.
function M.records(results)
  local rep = as_report(results)
  local cases, comps = {}, {}
  for _, r in ipairs(rep.cases) do cases[#cases + 1] = case_record(r) end
  for _, c in ipairs(rep.comparisons) do comps[#comps + 1] = comparison_record(c) end
  return cases, comps
end

--- M.time_str(seconds) -> "12.3 us" etc.
function M.time_str(s)
  if s == nil then return "" end
  if s >= 1 then return string.format("%.3f s", s) end
  if s >= 1e-3 then return string.format("%.3f ms", s * 1e3) end
  if s >= 1e-6 then return string.format("%.3f us", s * 1e6) end
  return string.format("%.1f ns", s * 1e9)
end

local function bytes_str(b)
  if not b then return "" end
  if b >= 2 ^ 20 then return string.format("%.1f MiB", b / 2 ^ 20) end
  if b >= 2 ^ 10 then return string.format("%.1f KiB", b / 2 ^ 10) end
  return string.format("%d B", b)
end

local CASE_COLUMNS = { { "name", "case" }, { "n", "n" }, { "median", "median" }, { "ci", "95% CI" },
                       { "iqr", "IQR" }, { "mean", "mean" }, { "stddev", "stddev" }, { "min", "min" },
                       { "max", "max" }, { "mem", "peak mem" }, { "warning", "warning" } }
local COMP_COLUMNS = { { "name", "comparison" }, { "a", "median a" }, { "b", "median b" }, { "ratio", "b/a" },
                       { "ci", "95% CI" }, { "p", "p" }, { "verdict", "verdict" } }

local function human_rows(cases, comps)
  local crow, mrow = {}, {}
  for _, r in ipairs(cases) do
    crow[#crow + 1] = { name = r.name, n = tostring(r.n), median = M.time_str(r.median),
      ci = M.time_str(r.ci_low) .. " .. " .. M.time_str(r.ci_high), iqr = M.time_str(r.iqr),
      mean = M.time_str(r.mean), stddev = M.time_str(r.stddev), min = M.time_str(r.min),
      max = M.time_str(r.max), mem = bytes_str(r.peak_memory), warning = r.warning or "" }
  end
  for _, c in ipairs(comps) do
    mrow[#mrow + 1] = { name = c.name, a = M.time_str(c.a.median), b = M.time_str(c.b.median),
      ratio = string.format("%.3f", c.ratio),
      ci = string.format("%.3f .. %.3f", c.ratio_ci_low, c.ratio_ci_high),
      p = string.format("%.3g", c.p_value), verdict = c.verdict }
  end
  return crow, mrow
end

local function markdown_table(rows, columns)
  local out = {}
  local head, rule = {}, {}
  for i, c in ipairs(columns) do head[i], rule[i] = c[2], "---" end
  out[1] = "| " .. table.concat(head, " | ") .. " |"
  out[2] = "| " .. table.concat(rule, " | ") .. " |"
  for _, r in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(columns) do cells[i] = tostring(r[c[1]] or ""):gsub("|", "\\|") end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(out, "\n") .. "\n"
end

local CSV_COLUMNS = { "kind", "name", "params", "n", "median", "q1", "q3", "iqr", "mean", "stddev", "min", "max",
                      "ci_low", "ci_high", "peak_memory", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value",
                      "verdict", "warning" }

local function csv_cell(v)
  if v == nil then return "" end
  if type(v) == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do keys[i] = k .. "=" .. tostring(v[k]) end
    v = table.concat(keys, " ")
  elseif type(v) == "number" and math.type(v) == "float" then
    v = string.format("%.9g", v)
  end
  v = tostring(v)
  if v:find('[,"\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function csv_text(cases, comps)
  local lines = { table.concat(CSV_COLUMNS, ",") }
  local function add(rec)
    local cells = {}
    for i, k in ipairs(CSV_COLUMNS) do cells[i] = csv_cell(rec[k]) end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  for _, r in ipairs(cases) do add(r) end
  for _, c in ipairs(comps) do
    add(c.a)
    add(c.b)
    add(c)
  end
  return table.concat(lines, "\n") .. "\n"
end

--- M.format(results, fmt) -> text. results: a list of run()/sweep()/compare()
--- results, or { cases = {...}, comparisons = {...} }. fmt: "table" (default),
--- "markdown", "csv", "json" (one object {cases, comparisons}) or "jsonl" (one
--- record per line, field "kind" = "case" | "comparison").
function M.format(results, fmt)
  fmt = fmt or "table"
  local cases, comps = M.records(results)
  if fmt == "json" then
    return cli.json({ cases = cases, comparisons = comps }, "  ") .. "\n"
  elseif fmt == "jsonl" then
    local lines = {}
    for _, r in ipairs(cases) do lines[#lines + 1] = cli.json(r) end
    for _, c in ipairs(comps) do lines[#lines + 1] = cli.json(c) end
    return #lines > 0 and table.concat(lines, "\n") .. "\n" or ""
  elseif fmt == "csv" then
    return csv_text(cases, comps)
  elseif fmt == "table" or fmt == "markdown" then
    local crow, mrow = human_rows(cases, comps)
    local render = fmt == "table" and cli.table or markdown_table
    local parts = {}
    if #crow > 0 then parts[#parts + 1] = render(crow, CASE_COLUMNS) end
    if #mrow > 0 then parts[#parts + 1] = render(mrow, COMP_COLUMNS) end
    return table.concat(parts, "\n")
  end
  error(string.format("bench.format: unknown format '%s' (table, markdown, csv, json, jsonl)", tostring(fmt)), 2)
end

-- ---- baselines ------------------------------------------------------------------

--- M.flatten(results) -> list of case results: the cases plus both sides of
--- every comparison (named "<comparison>.a" / ".b").
function M.flatten(results)
  local rep, out = as_report(results), {}
  for _, r in ipairs(rep.cases) do out[#out + 1] = r end
  for _, c in ipairs(rep.comparisons) do
    out[#out + 1] = c.a
    out[#out + 1] = c.b
  end
  return out
end

--- M.save_baseline(results, path) -> true or nil, message. Writes
--- {version=1, cases={name={median, ci_low, ci_high, n, ...}}} as JSON,
--- atomically (a temporary file renamed over path).
function M.save_baseline(results, path)
  local cases = {}
  for _, r in ipairs(M.flatten(results)) do
    local rec = {}
    for _, k in ipairs(STAT_KEYS) do rec[k] = r[k] end
    cases[r.name or "?"] = rec
  end
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then return nil, "save_baseline: " .. err end
  local ok, werr = f:write(cli.json({ version = 1, cases = cases }, "  "), "\n")
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, "save_baseline: cannot write " .. tmp .. ": " .. tostring(werr or cerr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, "save_baseline: " .. rerr
  end
  return true
end

--- M.load_baseline(path) -> table of name -> stats, or nil, message.
function M.load_baseline(path)
  local f, err = io.open(path)
  if not f then return nil, "baseline: " .. err end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(require("cjson").decode, text)
  if not ok or type(v) ~= "table" or type(v.cases) ~= "table" then
    return nil, "baseline: " .. path .. " is not a torsh bench baseline"
  end
  return v.cases
end

--- M.check_baseline(results, path [, {tolerance=0.05}]) -> regressions, or nil,
--- message. A case regresses when median > baseline median * (1 + tolerance)
--- AND its 95% CI lower bound is above the baseline median. Each regression:
--- {name, median, baseline, ratio, ci_low}. Cases absent from the baseline
--- are ignored.
function M.check_baseline(results, path, opts)
  local tol = (opts and opts.tolerance) or 0.05
  local base, err = M.load_baseline(path)
  if not base then return nil, err end
  local regressions = {}
  for _, r in ipairs(M.flatten(results)) do
    local b = base[r.name or "?"]
    local bm = b and tonumber(b.median)
    if bm and r.median > bm * (1 + tol) and r.ci_low > bm then
      regressions[#regressions + 1] = { name = r.name, median = r.median, baseline = bm,
                                        ratio = bm > 0 and r.median / bm or math.huge, ci_low = r.ci_low }
    end
  end
  return regressions
end

return M
