-- test_random.lua — the seeded generator: Philox known answers, statistics
-- of rand / randn / randint / bernoulli on 1e6 samples, randperm, in-place
-- fills of strided tensors, reproducibility (same seed, any thread count,
-- split requests) and bad input.
local torsh = require "torsh"
local T = require "torsh.test"

-- Statistics in plain Lua (independent of the reduction ops).
local function stats(t)
  local v = t:to("f64"):reshape(-1):totable()
  local n, s = #v, 0
  local lo, hi = math.huge, -math.huge
  for i = 1, n do
    local x = v[i]
    s = s + x
    if x < lo then lo = x end
    if x > hi then hi = x end
  end
  local mean, ss = s / n, 0
  for i = 1, n do ss = ss + (v[i] - mean) ^ 2 end
  return { mean = mean, std = math.sqrt(ss / (n - 1)), min = lo, max = hi, n = n, values = v }
end

local function same(a, b, msg) T.close(a, b, 0, msg) end

local function differ(a, b)
  local x, y = a:to("f64"):reshape(-1):totable(), b:to("f64"):reshape(-1):totable()
  local diff = 0
  for i = 1, #x do if x[i] ~= y[i] then diff = diff + 1 end end
  return diff
end

local function with_threads(n, fn)
  local old = torsh.get_num_threads()
  torsh.set_num_threads(n)
  local ok, r = pcall(fn)
  torsh.set_num_threads(old)
  if not ok then error(r, 0) end
  return r
end

local N = 1000000

T.case("Philox-4x32-10 known answer (Random123 vector for counter 0, key 0)", function()
  -- philox4x32_10({0,0,0,0}, {0,0}) = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}
  torsh.manual_seed(0)
  T.eq(torsh.rand(1, "f64"):item(), (0xe169c58d6627e8d5 >> 11) * 2.0 ^ -53)
  torsh.manual_seed(0)
  T.eq(torsh.rand(1):item(), (0x6627e8d5 >> 8) * 2.0 ^ -24)
  local seed, offset = torsh.get_rng_state()
  T.eq(seed, 0)
  T.eq(offset, 1)
end)

T.case("rand: uniform [0, 1) statistics, f32 and f64", function()
  torsh.manual_seed(1)
  for _, dt in ipairs { "f32", "f64" } do
    local s = stats(torsh.rand(N, dt))
    T.ok(s.min >= 0 and s.max < 1, dt .. " range")
    T.close(s.mean, 0.5, 0.002, dt .. " mean")
    T.close(s.std, math.sqrt(1 / 12), 0.002, dt .. " std")
    -- each tenth holds about a tenth
    local bins = {}
    for i = 1, 10 do bins[i] = 0 end
    for _, x in ipairs(s.values) do local b = math.floor(x * 10) + 1; bins[b] = bins[b] + 1 end
    for i = 1, 10 do T.close(bins[i] / N, 0.1, 0.002, dt .. " bin " .. i) end
  end
end)

T.case("rand: f16 / bf16 stay below 1; shapes as varargs or a table", function()
  torsh.manual_seed(2)
  for _, dt in ipairs { "f16", "bf16" } do
    local s = stats(torsh.rand(100000, dt))
    T.ok(s.min >= 0 and s.max < 1, dt .. " range")
    T.close(s.mean, 0.5, 0.01, dt .. " mean")
  end
  T.eq(torsh.rand(2, 3):size(2), 3)
  T.eq(torsh.rand({ 2, 3 }, "f64"):dtype(), "f64")
  T.eq(torsh.rand({}):dim(), 0)
end)

T.case("randn: normal statistics", function()
  torsh.manual_seed(3)
  for _, dt in ipairs { "f32", "f64" } do
    local s = stats(torsh.randn(N, dt))
    T.close(s.mean, 0, 0.005, dt .. " mean")
    T.close(s.std, 1, 0.005, dt .. " std")
    local within = 0
    for _, x in ipairs(s.values) do if math.abs(x) < 1 then within = within + 1 end end
    T.close(within / N, 0.682689, 0.003, dt .. " mass within one sigma")
    T.ok(s.max < 7 and s.min > -7, dt .. " no absurd tails")
  end
  local s = stats(torsh.randn(200000, "bf16"))
  T.close(s.mean, 0, 0.02, "bf16 mean")
  T.close(s.std, 1, 0.02, "bf16 std")
end)

T.case("normal_ and uniform_ with parameters, in place", function()
  torsh.manual_seed(4)
  local t = torsh.empty(N)
  T.ok(rawequal(t:normal_(3, 2), t), "normal_ returns self")
  local s = stats(t)
  T.close(s.mean, 3, 0.01)
  T.close(s.std, 2, 0.01)
  local u = torsh.empty(N, "f64"):uniform_(-2, 6)
  s = stats(u)
  T.ok(s.min >= -2 and s.max < 6, "uniform_ range")
  T.close(s.mean, 2, 0.01)
  T.close(s.std, 8 / math.sqrt(12), 0.01)
  s = stats(torsh.empty(1000, "f16"):uniform_(10, 11))
  T.ok(s.min >= 10 and s.max < 11, "f16 uniform_ range")
end)

T.case("uniform_/normal_ on strided views fill in row-major order", function()
  torsh.manual_seed(5)
  local a = torsh.zeros(6, 40000):uniform_()
  torsh.manual_seed(5)
  local b = torsh.zeros(40000, 6):t()
  T.ok(not b:is_contiguous(), "view is strided")
  b:uniform_()
  same(b, a)
  torsh.manual_seed(6)
  local c = torsh.zeros(3, 8):normal_()
  torsh.manual_seed(6)
  local big = torsh.zeros(3, 16)
  local d = big:slice(2, 1, -1, 2):normal_()
  same(d, c)
  same(big:slice(2, 2, -1, 2), torsh.zeros(3, 8))
end)

T.case("randint: range, mean and every value drawn", function()
  torsh.manual_seed(7)
  local t = torsh.randint(-3, 7, { N })
  T.eq(t:dtype(), "i64")
  local s = stats(t)
  T.eq(s.min, -3.0)
  T.eq(s.max, 6.0)
  T.close(s.mean, 1.5, 0.01)
  local counts = {}
  for _, x in ipairs(s.values) do counts[x] = (counts[x] or 0) + 1 end
  for v = -3, 6 do T.close(counts[v] / N, 0.1, 0.002, "frequency of " .. v) end
  -- randint(hi, shape) and other dtypes
  local u = torsh.randint(256, { 1000 }, "u8")
  T.eq(u:dtype(), "u8")
  T.ok(stats(u).max <= 255)
  local f = torsh.randint(0, 4, { 10 }, "f32")
  T.eq(f:dtype(), "f32")
  -- a huge range still stays inside
  local h = stats(torsh.randint(-(1 << 62), 1 << 62, { 1000 }))
  T.ok(h.min >= -(2.0 ^ 62) and h.max < 2.0 ^ 62)
end)

T.case("bernoulli: per-element probabilities and a scalar p", function()
  torsh.manual_seed(8)
  local p = torsh.tensor({ 0, 0.1, 0.5, 0.9, 1 }, "f64"):reshape(5, 1):expand(5, 200000)
  local b = p:bernoulli()
  T.eq(b:dtype(), "f64")
  local rows = b:totable()
  for i, want in ipairs { 0, 0.1, 0.5, 0.9, 1 } do
    local c = 0
    for _, x in ipairs(rows[i]) do c = c + x end
    T.close(c / 200000, want, 0.004, "frequency for p = " .. want)
  end
  local s = stats(torsh.zeros(N):bernoulli(0.25))
  T.close(s.mean, 0.25, 0.002)
  T.eq(torsh.bernoulli(torsh.full({ 3 }, 0.5)):dtype(), "f32")
end)

T.case("randperm is a permutation", function()
  torsh.manual_seed(9)
  for _, n in ipairs { 0, 1, 2, 10, 100000 } do
    local p = torsh.randperm(n)
    T.eq(p:dtype(), "i64")
    T.eq(p:numel(), n)
    local seen, v = {}, p:totable()
    for _, x in ipairs(v) do
      T.ok(x >= 0 and x < n and not seen[x], "value " .. x .. " valid and new")
      seen[x] = true
    end
  end
  -- not the identity, and every position moves with about the right odds
  local fixed, v = 0, torsh.randperm(100000):totable()
  for i, x in ipairs(v) do if x == i - 1 then fixed = fixed + 1 end end
  T.ok(fixed < 20, "a random permutation fixes about one point, got " .. fixed)
  T.eq(torsh.randperm(5, "i32"):dtype(), "i32")
end)

T.case("same seed twice gives identical numbers; different seeds differ", function()
  for _, f in ipairs {
    function() return torsh.rand(1000) end,
    function() return torsh.randn(1000, "f64") end,
    function() return torsh.randint(0, 1000000, { 1000 }) end,
    function() return torsh.randperm(1000) end,
    function() return torsh.zeros(1000):bernoulli(0.5) end,
  } do
    torsh.manual_seed(42)
    local a = f()
    torsh.manual_seed(42)
    local b = f()
    same(a, b)
    torsh.manual_seed(43)
    T.ok(differ(a, f()) > 400, "a different seed gives different numbers")
  end
end)

T.case("results do not depend on the thread count", function()
  local function draw()
    torsh.manual_seed(11)
    return { torsh.rand(300000), torsh.randn(300000, "f64"), torsh.randint(0, 100, { 300000 }),
             torsh.zeros(300000):bernoulli(0.3), torsh.zeros(600, 500):t():normal_() }
  end
  local one = with_threads(1, draw)
  local two = with_threads(2, draw)
  local many = with_threads(8, draw)
  for i = 1, #one do
    same(one[i], two[i], "1 vs 2 threads, draw " .. i)
    same(one[i], many[i], "1 vs 8 threads, draw " .. i)
  end
end)

T.case("requests advance the counter: two halves equal one whole", function()
  torsh.manual_seed(12)
  local whole = torsh.randn(100000)
  torsh.manual_seed(12)
  local first, second = torsh.randn(50000), torsh.randn(50000)
  same(torsh.cat{ first, second }, whole)
  local _, offset = torsh.get_rng_state()
  T.eq(offset, 100000)
  -- set_rng_state replays
  torsh.set_rng_state(12, 50000)
  same(torsh.randn(50000), second)
  -- rand_like / randn_like
  local t = torsh.zeros(2, 3, "f64")
  T.eq(torsh.rand_like(t):dtype(), "f64")
  T.eq(torsh.randn_like(t, "f32"):dtype(), "f32")
end)

T.case("bad input", function()
  T.raises(function() torsh.rand(3, "i64") end, "rand: needs a floating dtype (f32, f64, f16, bf16), got i64")
  T.raises(function() torsh.randn(3, "i32") end, "randn: needs a floating dtype")
  T.raises(function() torsh.randint(5, 5, { 2 }) end, "randint: needs lo < hi, got [5, 5)")
  T.raises(function() torsh.randint(0, 300, { 2 }, "u8") end, "randint: range [0, 300) does not fit dtype u8 (0..255)")
  T.raises(function() torsh.randint(-1, 1, { 2 }, "bool") end, "does not fit dtype bool")
  T.raises(function() torsh.tensor({ 0.5, 1.5 }):bernoulli() end, "bernoulli: probabilities must be in [0, 1], got 1.5 at position 1")
  T.raises(function() torsh.tensor({ 1, 0 }):bernoulli() end, "bernoulli: needs a floating dtype")
  T.raises(function() torsh.zeros(2):bernoulli(-0.1) end, "bernoulli: probability must be in [0, 1], got -0.1")
  T.raises(function() torsh.zeros(3, "i64"):uniform_() end, "uniform_: needs a floating dtype")
  T.raises(function() torsh.zeros(3):uniform_(1, 0) end, "uniform_: needs finite bounds with lo <= hi, got [1, 0)")
  T.raises(function() torsh.zeros(3):normal_(0, -1) end, "normal_: needs a finite mean and std >= 0, got mean 0, std -1")
  T.raises(function() torsh.zeros(1, 3):expand(4, 3):normal_() end, "normal_: the tensor has elements sharing memory")
  T.raises(function() torsh.randperm(-1) end, "randperm: n must be non-negative, got -1")
  T.raises(function() torsh.rand(-2) end, "negative size")
end)

T.finish()
