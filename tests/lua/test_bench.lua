-- test_bench.lua — torsh.bench: statistics on fixed samples, Mann-Whitney U
-- and the bootstrap against hand-computed values, run/compare/sweep with an
-- injected deterministic clock (plus one loose real-time check), baselines
-- and every output format.
-- Mann-Whitney references: scipy is not installed here, so they were computed
-- by hand (ranks shown below) and checked with /usr/bin/python3's math.erfc
-- following scipy.stats.mannwhitneyu(method="asymptotic")'s formula.
local T = require "torsh.test"
local bench = require "torsh.bench"
local cjson = require "cjson"

local tmpdir = os.getenv("TMPDIR") or "/tmp"
local function tmpname(tag) return string.format("%s/torsh_bench_%s_%d_%d.json", tmpdir, tag, os.time(), math.random(1e9)) end

T.case("stats: median, quartiles, mean, stddev on 1..10", function()
  local s = bench.stats({ 5, 1, 4, 2, 3, 10, 7, 6, 9, 8 })
  T.eq(s.n, 10)
  T.close(s.median, 5.5)
  T.close(s.q1, 3.25)        -- h = 9 * 0.25 + 1 = 3.25 -> 3 + 0.25 * (4 - 3)
  T.close(s.q3, 7.75)
  T.close(s.iqr, 4.5)
  T.close(s.mean, 5.5)
  T.close(s.stddev, math.sqrt(82.5 / 9))   -- 3.0276503540974917
  T.eq(s.min, 1); T.eq(s.max, 10)
  T.eq(s.ci_index[1], 2); T.eq(s.ci_index[2], 9)
  T.eq(s.ci_low, 2); T.eq(s.ci_high, 9)
end)

T.case("stats: odd n and a single sample", function()
  local s = bench.stats({ 3, 1, 2 })
  T.close(s.median, 2); T.close(s.q1, 1.5); T.close(s.q3, 2.5); T.close(s.stddev, 1)
  local one = bench.stats({ 0.5 })
  T.close(one.median, 0.5); T.eq(one.stddev, 0); T.eq(one.ci_low, 0.5); T.eq(one.ci_high, 0.5)
end)

T.case("median CI order-statistic indexes (Binomial(n, 1/2) tables)", function()
  local want = { [5] = { 1, 5 }, [6] = { 1, 6 }, [10] = { 2, 9 }, [20] = { 6, 15 }, [100] = { 40, 61 } }
  for n, w in pairs(want) do
    local lo, hi = bench.median_ci_indexes(n)
    T.eq(lo, w[1], "lo for n=" .. n); T.eq(hi, w[2], "hi for n=" .. n)
  end
  local lo, hi = bench.median_ci_indexes(5000)   -- no underflow trouble for big n
  T.ok(lo > 2400 and lo < 2500 and hi == 5001 - lo)
end)

T.case("Mann-Whitney U: separated samples", function()
  -- ranks of a are 1..5: R1 = 15, U = 0; mu = 12.5, sigma = sqrt(25/12*11)
  local p, u, z = bench.mann_whitney({ 1, 2, 3, 4, 5 }, { 6, 7, 8, 9, 10 })
  T.eq(u, 0.0)
  T.close(z, 2.5067182457620487, 1e-9)
  T.close(p, 0.012185780355344818, 1e-6)
end)

T.case("Mann-Whitney U: ties", function()
  -- sorted: 1a 2a 2a 2b 3a 3b 4a 5b 6b 6b; ranks of a: 1, 3, 3, 5.5, 7 -> R1 = 19.5, U = 4.5
  -- tie term: (27-3) + (8-2) + (8-2) = 36; var = 25/12 * (11 - 36/90)
  local p, u, z = bench.mann_whitney({ 1, 2, 2, 3, 4 }, { 2, 3, 5, 6, 6 })
  T.eq(u, 4.5)
  T.close(z, 1.5959855297967944, 1e-9)
  T.close(p, 0.11049202405566808, 1e-6)
  local p_same = bench.mann_whitney({ 1, 1, 1 }, { 1, 1, 1 })
  T.eq(p_same, 1.0)
end)

T.case("bootstrap CI of the ratio is reproducible and brackets the ratio", function()
  local a, b = {}, {}
  for i = 1, 30 do a[i] = 1 + 0.01 * (i % 7); b[i] = 2 + 0.02 * (i % 5) end
  local lo1, hi1 = bench.bootstrap_ratio_ci(a, b)
  local lo2, hi2 = bench.bootstrap_ratio_ci(a, b)
  T.eq(lo1, lo2); T.eq(hi1, hi2)
  T.ok(lo1 <= hi1 and lo1 > 1.8 and hi1 < 2.2, string.format("CI %g .. %g", lo1, hi1))
  local lo3 = bench.bootstrap_ratio_ci(a, b, { seed = 7 })
  T.ok(lo3 > 1.8)
end)

T.case("verdict logic", function()
  T.eq(bench.verdict(0.001, 1.5, 2.0), "a faster")
  T.eq(bench.verdict(0.001, 0.4, 0.6), "b faster")
  T.eq(bench.verdict(0.001, 0.9, 1.1), "no significant difference")
  T.eq(bench.verdict(0.2, 1.5, 2.0), "no significant difference")
end)

-- A deterministic fake timer: the functions advance `now` by what they "cost".
local function fake_clock()
  local c = { now = 0 }
  c.clock = function() return c.now end
  return c
end

-- Deterministic jitter in [-amp, amp] from a fixed sequence.
local function jitter_seq(seed, amp)
  local s = seed
  return function()
    s = (s * 1103515245 + 12345) % 2147483648
    return (s / 2147483648 * 2 - 1) * amp
  end
end

T.case("run: warm-up, stopping rules, setup untimed (fake clock)", function()
  local c = fake_clock()
  local calls, setups = 0, 0
  local r = bench.run(function() calls = calls + 1; c.now = c.now + 0.001 end,
    { clock = c.clock, setup = function() setups = setups + 1; c.now = c.now + 5 end,
      warmup = 3, min_runs = 7 })
  -- identical costs: the spread is 0 < target after min_runs (setup time is
  -- inside min_time's wall clock but not in the samples)
  T.eq(r.n, 7); T.eq(calls, 10); T.eq(setups, 10)
  T.close(r.median, 0.001, 1e-12); T.close(r.stddev, 0, 1e-12)
  T.eq(r.warning, nil)
  T.eq(r.peak_memory, 0)
  local noisy = jitter_seq(1, 0.0005)
  local r2 = bench.run(function() c.now = c.now + 0.001 + noisy() end,
    { clock = c.clock, warmup = 0, min_time = 0.05, target_spread = 0 })
  T.ok(r2.n >= 5 and r2.n <= 60, "n = " .. r2.n)     -- ~0.05 s / 1 ms
  T.ok(r2.warning and r2.warning:find("noisy"), "expects a spread warning")
  local r3 = bench.run(function() c.now = c.now + 0.001 + noisy() end,
    { clock = c.clock, warmup = 0, min_time = 1e9, target_spread = 0, max_runs = 40 })
  T.eq(r3.n, 40)
end)

T.case("run: peak tensor memory", function()
  local r = bench.run(function() local t <close> = torsh.zeros(1024) end,
    { warmup = 1, min_runs = 2, max_runs = 3, min_time = 0 })
  T.ok(r.peak_memory >= 1024 * 4, "peak " .. r.peak_memory)
end)

T.case("compare: verdicts with a fake clock", function()
  local c = fake_clock()
  local ja, jb = jitter_seq(11, 0.0001), jitter_seq(22, 0.0001)
  local order = {}
  local res = bench.compare(
    function() order[#order + 1] = "a"; c.now = c.now + 0.001 + ja() end,
    function() order[#order + 1] = "b"; c.now = c.now + 0.002 + jb() end,
    { clock = c.clock, warmup = 1, min_time = 0.2, target_spread = 0 })
  T.eq(res.verdict, "a faster")
  T.ok(res.p_value < 1e-6)
  T.ok(res.ratio > 1.8 and res.ratio < 2.2)
  T.ok(res.ratio_ci[1] > 1 and res.ratio_ci[2] > res.ratio_ci[1])
  T.eq(table.concat(order, "", 3, 6), "abab")     -- interleaved after the warm-ups
  local swapped = bench.compare(
    function() c.now = c.now + 0.002 + ja() end,
    function() c.now = c.now + 0.001 + jb() end,
    { clock = c.clock, warmup = 0, min_time = 0.2, target_spread = 0 })
  T.eq(swapped.verdict, "b faster")
  local ja2, jb2 = jitter_seq(5, 0.0002), jitter_seq(6, 0.0002)
  local same = bench.compare(
    function() c.now = c.now + 0.001 + ja2() end,
    function() c.now = c.now + 0.001 + jb2() end,
    { clock = c.clock, warmup = 0, min_time = 0.2, target_spread = 0 })
  T.eq(same.verdict, "no significant difference")
  T.ok(same.ratio_ci[1] < 1 and same.ratio_ci[2] > 1)
end)

T.case("compare: real clock, empty function vs 2 ms busy loop", function()
  local res = bench.compare(function() end,
    function() local t0 = torsh.clock(); while torsh.clock() - t0 < 0.002 do end end,
    { warmup = 1, min_runs = 10, min_time = 0.05 })
  T.eq(res.verdict, "a faster")
  T.ok(res.b.median >= 0.002)
end)

T.case("sweep: all combinations, threads restored", function()
  local before = torsh.get_num_threads()
  local c = fake_clock()
  local seen = {}
  local rows = bench.sweep(function(p)
    return function()
      seen[#seen + 1] = torsh.get_num_threads()
      c.now = c.now + 0.001 * p.batch
    end
  end, { batch = { 1, 8 }, threads = { 1, 2 } }, { clock = c.clock, warmup = 0, min_runs = 5 })
  T.eq(#rows, 4)
  T.eq(rows[1].name, "batch=1 threads=1"); T.eq(rows[4].name, "batch=8 threads=2")
  T.eq(rows[2].params.threads, 2); T.eq(rows[3].params.batch, 8)
  T.close(rows[3].median, 0.008, 1e-12)
  T.eq(seen[1], 1)
  T.eq(torsh.get_num_threads(), before)
  T.raises(function()
    bench.sweep(function() error("boom") end, { threads = { 1 } }, { clock = c.clock })
  end, "boom")
  T.eq(torsh.get_num_threads(), before)
end)

local function injected(name, median, spread)
  local samples = {}
  for i = 1, 20 do samples[i] = median * (1 + spread * ((i % 5) - 2) / 2) end
  local r = bench.stats(samples)
  r.name, r.samples, r.peak_memory = name, samples, 0
  if r.rel_iqr > 0.1 then r.warning = "noisy" end
  return r
end

T.case("baseline round trip and regression detection", function()
  local path = tmpname("base")
  local results = { injected("fast", 0.001, 0.01), injected("slow", 0.010, 0.01) }
  T.ok(bench.save_baseline(results, path))
  T.eq(io.open(path .. ".tmp"), nil)                  -- the temporary was renamed
  local base = assert(bench.load_baseline(path))
  T.close(base.fast.median, results[1].median, 1e-15)
  T.eq(#bench.check_baseline(results, path), 0)       -- same results: no regression
  -- 3% slower: within the 5% tolerance
  T.eq(#bench.check_baseline({ injected("fast", 0.00103, 0.01), injected("slow", 0.010, 0.01) }, path), 0)
  -- 50% slower with a tight CI: a regression
  local regs = bench.check_baseline({ injected("fast", 0.0015, 0.01), injected("slow", 0.010, 0.01) }, path)
  T.eq(#regs, 1); T.eq(regs[1].name, "fast"); T.close(regs[1].ratio, 1.5, 1e-9)
  -- 10% slower but so noisy the CI reaches below the baseline: no regression
  T.eq(#bench.check_baseline({ injected("fast", 0.0011, 0.8) }, path), 0)
  -- a looser tolerance accepts the 50% slowdown
  T.eq(#bench.check_baseline({ injected("fast", 0.0015, 0.01) }, path, { tolerance = 0.6 }), 0)
  -- unknown cases are ignored; a bad file is an error message
  T.eq(#bench.check_baseline({ injected("new", 1, 0.01) }, path), 0)
  os.remove(path)
  local none, err = bench.check_baseline(results, path)
  T.eq(none, nil); T.ok(err:find("baseline"))
end)

T.case("output formats parse", function()
  local c = fake_clock()
  local cmp = bench.compare(function() c.now = c.now + 0.001 end, function() c.now = c.now + 0.002 end,
    { clock = c.clock, warmup = 0, min_runs = 6, name = "x, \"quoted\"" })
  local report = { cases = { injected("case one", 0.001, 0.01), injected("noisy", 0.001, 0.9) }, comparisons = { cmp } }
  local j = cjson.decode(bench.format(report, "json"))
  T.eq(#j.cases, 2); T.eq(j.cases[1].name, "case one"); T.eq(j.comparisons[1].verdict, cmp.verdict)
  T.ok(j.cases[2].warning:find("noisy"))
  T.close(j.comparisons[1].ratio, 2, 1e-9)
  local lines = 0
  for line in bench.format(report, "jsonl"):gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    T.ok(rec.kind == "case" or rec.kind == "comparison")
    lines = lines + 1
  end
  T.eq(lines, 3)
  local csv = bench.format(report, "csv")
  local rows = {}
  for line in csv:gmatch("[^\n]+") do rows[#rows + 1] = line end
  T.eq(#rows, 1 + 2 + 3)                               -- header, cases, a + b + comparison
  T.ok(rows[1]:find("^kind,name,"))
  T.ok(csv:find('"x, ""quoted""', 1, true))
  local md = bench.format(report, "markdown")
  T.ok(md:find("| case |", 1, true) and md:find("| --- |", 1, true) and md:find("a faster", 1, true))
  local tbl = bench.format(report, "table")
  T.ok(tbl:find("case one") and tbl:find("1.000 ms"))
  T.eq(cjson.decode(bench.format({}, "json")).cases[1], nil)
  T.raises(function() bench.format(report, "xml") end, "unknown format")
  -- a sweep's params survive JSON
  local sw = bench.sweep(function(p) return function() c.now = c.now + 0.001 * p.batch end end,
    { batch = { 1, 2 } }, { clock = c.clock, warmup = 0 })
  T.eq(cjson.decode(bench.format(sw, "json")).cases[2].params.batch, 2)
end)

T.finish()
