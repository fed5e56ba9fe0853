-- test_reduce.lua — reductions (sum, mean, prod, amax, amin, logsumexp, any,
-- all, var, std, norm), max/min with indices, argmax/argmin, cumsum/cumprod,
-- sort and topk against PyTorch references (tests/fixtures/reduce_ref.lua,
-- made by gen_reduce.py), plus NaN/inf edge cases, empty dims, large
-- tensors on both loop shapes, thread-count independence and bad input.
-- Dims are 1-based; index results are 0-based.
local torsh = require "torsh"
local T = require "torsh.test"

local REF = dofile("tests/fixtures/reduce_ref.lua")

-- tolerances per result dtype
local TOL = {
  f32 = { atol = 1e-5, rtol = 1e-5 }, f64 = { atol = 1e-10, rtol = 1e-10 },
  f16 = { atol = 1e-2, rtol = 1e-2 }, bf16 = { atol = 5e-2, rtol = 2e-2 },
}

local function make(spec)
  return torsh.tensor(spec.data, spec.dtype):reshape(spec.shape)
end

local function view(t, v)
  if not v then return t end
  if v[1] == "t" then return t:transpose(v[2], v[3]) end
  if v[1] == "slice" then return t:slice(v[2], v[3], v[4], v[5]) end
  if v[1] == "permute" then return t:permute(v[2]) end
  if v[1] == "expand" then return t:expand(v[2]) end
  error("unknown view " .. tostring(v[1]))
end

local function input(c)
  return view(make(REF.inputs[c.input]), c.view)
end

local function check(got, want, what)
  T.eq(got:dtype(), want.dtype, what .. " dtype")
  T.close(got, make(want), TOL[want.dtype] or 0, what)
end

local function vname(v) return v and v[1] or "contiguous" end
local function dname(d) return type(d) == "table" and "{" .. table.concat(d, ",") .. "}" or tostring(d) end

-- ---- PyTorch references ---------------------------------------------------------

T.case("reductions match PyTorch (every dtype, views, dims, keepdim)", function()
  for i, c in ipairs(REF.reduce) do
    local x = input(c)
    local what = string.format("#%d %s %s %s dims=%s keepdim=%s", i, c.op, REF.inputs[c.input].dtype, vname(c.view),
      dname(c.dims), tostring(c.keepdim))
    check(x[c.op](x, c.dims, c.keepdim), c.want, what)
    -- the module function is the same
    if i % 7 == 0 then check(torsh[c.op](x, c.dims, c.keepdim), c.want, what .. " (torsh." .. c.op .. ")") end
  end
end)

T.case("var and std match PyTorch (correction, keepdim, views)", function()
  for i, c in ipairs(REF.stat) do
    local x = input(c)
    local what = string.format("#%d %s %s dims=%s correction=%s", i, c.op, REF.inputs[c.input].dtype, dname(c.dims),
      tostring(c.correction))
    check(x[c.op](x, c.dims, c.correction, c.keepdim), c.want, what)
    check(x[c.op](x, c.dims, { correction = c.correction, keepdim = c.keepdim }), c.want, what .. " (options)")
  end
end)

T.case("norm matches PyTorch for p = 2, 1, 3, 0.5, inf, -inf, 0", function()
  for i, c in ipairs(REF.norm) do
    local x = input(c)
    check(x:norm(c.p, c.dims, c.keepdim), c.want,
      string.format("#%d norm p=%s %s dims=%s", i, tostring(c.p), REF.inputs[c.input].dtype, dname(c.dims)))
  end
end)

T.case("max/min along a dim give values and first-occurrence indices", function()
  for i, c in ipairs(REF.best) do
    local x = input(c)
    local what = string.format("#%d %s %s dim=%d keepdim=%s", i, c.op, REF.inputs[c.input].dtype, c.dim, tostring(c.keepdim))
    local v, ix = x[c.op](x, c.dim, c.keepdim)
    check(v, c.want, what)
    check(ix, c.want_idx, what .. " indices")
  end
end)

T.case("argmax/argmin over one dim or all dims", function()
  for i, c in ipairs(REF.arg) do
    local x = input(c)
    check(x[c.op](x, c.dim, c.keepdim), c.want,
      string.format("#%d %s %s dim=%s keepdim=%s", i, c.op, REF.inputs[c.input].dtype, tostring(c.dim), tostring(c.keepdim)))
  end
end)

T.case("cumsum/cumprod match PyTorch (integers give i64)", function()
  for i, c in ipairs(REF.cum) do
    local x = input(c)
    check(x[c.op](x, c.dim), c.want, string.format("#%d %s %s dim=%d", i, c.op, REF.inputs[c.input].dtype, c.dim))
  end
end)

T.case("sort is stable, ascending and descending, every dtype", function()
  for i, c in ipairs(REF.sort) do
    local x = input(c)
    local what = string.format("#%d sort %s dim=%d descending=%s", i, REF.inputs[c.input].dtype, c.dim, tostring(c.descending))
    local v, ix = x:sort(c.dim, c.descending)
    check(v, c.want, what)
    check(ix, c.want_idx, what .. " indices")
    check(x:argsort(c.dim, c.descending), c.want_idx, what .. " argsort")
  end
end)

T.case("topk largest/smallest, sorted", function()
  for i, c in ipairs(REF.topk) do
    local x = input(c)
    local what = string.format("#%d topk k=%d %s dim=%s largest=%s", i, c.k, REF.inputs[c.input].dtype, tostring(c.dim),
      tostring(c.largest))
    local v, ix = x:topk(c.k, c.dim, c.largest)
    check(v, c.want, what)
    check(ix, c.want_idx, what .. " indices")
  end
end)

-- ---- NaN, infinities, signed zeros, ties --------------------------------------------

T.case("NaN and infinities propagate like PyTorch", function()
  local S = REF.special
  local x = make(REF.inputs[S.input])
  for _, op in ipairs { "sum", "prod", "amax", "amin", "logsumexp", "any", "all", "mean" } do
    check(x[op](x, 2), S[op], op)
  end
  for _, op in ipairs { "max", "min" } do
    local v, ix = x[op](x, 2)
    check(v, S[op], op)
    check(ix, S[op .. "_idx"], op .. " indices")
  end
  check(x:argmax(2), S.argmax, "argmax")
  check(x:argmin(2), S.argmin, "argmin")
  T.eq(x:argmax():item(), S.argmax_all, "argmax over all")
  check(x:cumsum(2), S.cumsum, "cumsum")
  local v, ix = x:sort(2)
  check(v, S.sort, "sort")
  check(ix, S.sort_idx, "sort indices")
  v, ix = x:sort(2, true)
  check(v, S.sort_desc, "sort descending")
  check(ix, S.sort_desc_idx, "sort descending indices")
  local row = x:select(1, 1)
  v, ix = row:topk(3)
  check(v, S.topk_row1, "topk")
  check(ix, S.topk_row1_idx, "topk indices")
  v, ix = row:topk(3, -1, false)
  check(v, S.topk_small_row1, "topk smallest")
  check(ix, S.topk_small_row1_idx, "topk smallest indices")
end)

T.case("NaN and inf also propagate on the column loop shape", function()
  -- sum over dim 1 of [n, 64] reads whole rows at a time
  local x = torsh.ones(50, 64)
  x:set(0 / 0, 7, 3)
  x:set(math.huge, 9, 5)
  x:set(-math.huge, 9, 6)
  local s = x:sum(1)
  T.ok(s:get(3) ~= s:get(3), "NaN in column 3")
  T.eq(s:get(5), math.huge)
  T.eq(s:get(6), -math.huge)
  T.eq(s:get(1), 50)
  local m = x:amax(1)
  T.ok(m:get(3) ~= m:get(3), "amax NaN")
  T.eq(m:get(5), math.huge)
  local l = x:logsumexp(1)
  T.ok(l:get(3) ~= l:get(3), "logsumexp NaN")
  T.eq(l:get(5), math.huge)
  T.close(l:get(6), 1 + math.log(49))
  T.close(l:get(1), 1 + math.log(50))
end)

T.case("logsumexp rescales when later chunks hold larger values", function()
  -- increasing values: every chunk of the row loop and every column step raises the max
  local n = 1000
  local want = 0
  for i = 0, n - 1 do want = want + math.exp(i / 10 - 99.9) end
  want = 99.9 + math.log(want)
  local x = torsh.arange(0, n, 1, "f64") / 10
  T.close(x:logsumexp():item(), want, 1e-12, "row f64")
  T.close(x:to("f32"):logsumexp():item(), want, 1e-5, "row f32")
  local cols = x:view(n, 1):expand(n, 32)
  T.close(cols:logsumexp(1), torsh.full({ 32 }, want, "f64"), 1e-12, "columns")
  T.close(x:view(10, 100):logsumexp({ 1, 2 }):item(), want, 1e-12, "two dims")
end)

-- ---- shapes: 0-dim, size-1 dims, empty dims ----------------------------------------------

T.case("0-dim tensors and size-1 reductions", function()
  local s = torsh.tensor(2.5)
  T.eq(s:sum():item(), 2.5)
  T.eq(s:sum(1):item(), 2.5)
  T.eq(s:sum(-1, true):dim(), 0)
  T.eq(s:logsumexp():item(), 2.5)
  T.eq(s:any():item(), true)
  local v, ix = s:max(1)
  T.eq(v:item(), 2.5)
  T.eq(ix:item(), 0)
  v, ix = s:sort()
  T.eq(v:item(), 2.5)
  T.eq(ix:item(), 0)
  T.eq(s:cumsum(1):item(), 2.5)
  T.eq(s:argmax():item(), 0)
  -- reducing a size-1 dim converts the dtype
  local t = torsh.tensor({ { 3 }, { 0 } }, "i32")
  T.eq(t:sum(2):dtype(), "i64")
  T.close(t:sum(2), { 3, 0 })
  T.close(t:any(2), { true, false })
  T.close(t:logsumexp(2), { 3, 0 })
  T.eq(t:logsumexp(2):dtype(), "f32")
end)

T.case("empty reductions give the identity; amax/max/argmax raise", function()
  local z = torsh.zeros(0, 3)
  T.close(z:sum(1), { 0, 0, 0 })
  T.close(z:prod(1), { 1, 1, 1 })
  local m = z:mean(1)
  T.ok(m:get(1) ~= m:get(1), "mean of nothing is NaN")
  T.close(z:logsumexp(1), { -math.huge, -math.huge, -math.huge })
  T.close(z:any(1), { false, false, false })
  T.close(z:all(1), { true, true, true })
  T.eq(z:sum():item(), 0)
  T.close(z:norm(math.huge, 1), { 0, 0, 0 })
  -- reducing the non-empty dim of an empty tensor is fine
  T.eq(z:amax(2):numel(), 0)
  T.eq(select(2, z:max(2)):numel(), 0)
  T.eq(z:cumsum(1):numel(), 0)
  T.eq(z:sort(1):numel(), 0)
  T.raises(function() return z:amax(1) end, "cannot perform reduction on an empty dim")
  T.raises(function() return z:amin() end, "cannot perform reduction on an empty dim")
  T.raises(function() return z:max() end, "cannot perform reduction on an empty dim")
  T.raises(function() return z:max(1) end, "cannot perform reduction on an empty dim")
  T.raises(function() return z:argmax() end, "argmax: cannot perform reduction on an empty tensor")
  T.raises(function() return z:argmin(1) end, "argmin: cannot perform reduction on an empty dim")
end)

-- ---- integers ---------------------------------------------------------------------------------

T.case("integer sums and products are exact i64 and wrap", function()
  -- 2^60 + 2 is not a double: only an int64 accumulator gets it right
  T.eq(torsh.tensor({ 1 << 60, 1, 1 }, "i64"):sum():item(), (1 << 60) + 2)
  T.eq(torsh.tensor({ 1 << 60, 1, 1 }, "i64"):amax():item(), 1 << 60)
  T.eq(torsh.tensor({ 1 << 62, 4 }, "i64"):prod():item(), 0)                       -- 2^64 wraps to 0
  T.eq(torsh.tensor({ 1 << 62, 1 << 62 }, "i64"):sum():item(), math.mininteger)    -- 2^63 wraps
  local u = torsh.tensor({ 200, 100 }, "u8")
  T.eq(u:sum():item(), 300)
  T.eq(u:sum():dtype(), "i64")
  T.eq(u:cumsum(1):dtype(), "i64")
  T.eq(torsh.tensor({ true, true, false }):sum():item(), 2)
  T.eq(torsh.tensor({ true, true, false }):amax():dtype(), "bool")
  local ix = select(2, torsh.tensor({ 1 << 60, (1 << 60) + 256, (1 << 60) + 256 }, "i64"):max(1))
  T.eq(ix:item(), 1)
end)

-- ---- large tensors: accuracy, both loop shapes, threads ---------------------------------

local function long_tensor(n, offset)
  local t = {}
  for i = 0, n - 1 do t[i + 1] = ((i * 7919) % 10007) / 10007 + offset end
  return torsh.tensor(t, "f32")
end

T.case("long f32 sums agree with NumPy to 1e-5", function()
  for _, c in ipairs(REF.long_sums) do
    local x = long_tensor(c.n, c.offset)
    local s = x:sum():item()
    T.close(s, c.numpy_f32, { atol = 0, rtol = 1e-5 }, "vs numpy f32 n=" .. c.n)
    T.close(s, c.exact, { atol = 0, rtol = 1e-6 }, "vs f64 sum n=" .. c.n)
    T.close(x:mean():item(), c.mean, { atol = 0, rtol = 1e-6 }, "mean n=" .. c.n)
    -- a strided view of the same data (every element twice via expand)
    local e = x:view(1, c.n):expand(2, c.n):t()
    T.close(e:sum():item(), 2 * c.exact, { atol = 0, rtol = 1e-6 }, "expanded")
  end
end)

local function pattern(rows, cols)
  local n = rows * cols
  return (torsh.arange(0, n, 1, "f64"):remainder(997) / 997 - 0.4):to("f32"):view(rows, cols)
end

T.case("row and column loop shapes agree with f64 for every op", function()
  local x = pattern(3000, 300)             -- dim 1: column shape (blocks); dim 2: row shape
  local xd = x:to("f64")
  local xt = x:t():contiguous()            -- the same reductions through the other loop shape
  for _, op in ipairs { "sum", "mean", "amax", "amin", "logsumexp" } do
    for d = 1, 2 do
      local want = xd[op](xd, d):to("f32")
      T.close(x[op](x, d), want, 1e-5, op .. " dim " .. d)
      T.close(xt[op](xt, 3 - d), want, 1e-5, op .. " transposed dim " .. (3 - d))
    end
  end
  local p = (x * 0.001 + 1)
  T.close(p:prod(1), p:to("f64"):prod(1):to("f32"), 1e-5, "prod columns")
  local b = x:gt(0.55)
  T.close(b:any(1), b:t():contiguous():any(2), 0, "any columns vs rows")
  T.close(b:all(2), b:t():contiguous():all(1), 0, "all rows vs columns")
  local i = (x * 100):to("i32")
  T.close(i:sum(1), i:t():contiguous():sum(2), 0, "int sum columns vs rows")
  T.close(i:amin(1), i:t():contiguous():amin(2), 0, "int amin columns vs rows")
  -- f16 / bf16 accumulate in f32
  local h = x:to("f16")
  T.close(h:sum(1), h:to("f64"):sum(1), { atol = 0.1, rtol = 2e-3 }, "f16 column sum")
  T.close(h:sum(2), h:to("f64"):sum(2), { atol = 0.1, rtol = 2e-3 }, "f16 row sum")
end)

T.case("results do not depend on the thread count", function()
  local saved = torsh.get_num_threads()
  local x = pattern(2048, 2048)
  local function run()
    return { x:sum():item(), x:sum(1):sum():item(), x:sum(2):sum():item(), x:logsumexp():item(),
             x:narrow(1, 1, 3):sum(2):sum():item(), x:var():item(), x:cumsum(1):sum():item() }
  end
  torsh.set_num_threads(1)
  local one = run()
  torsh.set_num_threads(4)
  local four = run()
  torsh.set_num_threads(saved)
  for i = 1, #one do T.eq(four[i], one[i], "result " .. i) end
end)

-- ---- bad input --------------------------------------------------------------------------------------

T.case("bad input raises with the op and the reason", function()
  local x = torsh.ones(2, 3)
  local i = torsh.ones(2, 3, "i64")
  T.raises(function() return i:mean() end, "mean: input dtype i64 is not floating point")
  T.raises(function() return i:var() end, "var: input dtype i64 is not floating point")
  T.raises(function() return i:std(1) end, "std: input dtype i64 is not floating point")
  T.raises(function() return i:norm() end, "norm: input dtype i64 is not floating point")
  T.raises(function() return x:sum(3) end, "dim 3 is out of range for a tensor with 2 dims")
  T.raises(function() return x:sum(0) end, "1-based")
  T.raises(function() return x:sum({ 1, -2 }) end, "sum: dim 0 appears more than once")
  T.raises(function() return x:amax({}) end, "empty dim list")
  T.raises(function() return x:max(-3) end, "out of range")
  T.raises(function() return x:argmax(5) end, "out of range")
  T.raises(function() return x:cumsum() end, "number expected")
  T.raises(function() return x:sort(4) end, "out of range")
  T.raises(function() return x:topk(4) end, "topk: k = 4 is out of range for dim 1 of shape [2, 3]")
  T.raises(function() return x:topk(-1) end, "topk: k = -1 is out of range")
  T.raises(function() return x:norm("nuc") end, "p must be a number")
  T.raises(function() return torsh.sum(5) end, "Tensor expected")
  T.raises(function() return x:var(1, "x") end, "number expected")
end)

T.case("reductions leave their input untouched and return new tensors", function()
  local x = torsh.tensor({ { 3, 1 }, { 2, 5 } }, "f32")
  local s = x:sum(1, true)
  s:fill_(0)
  T.close(x, { { 3, 1 }, { 2, 5 } })
  local v = x:sort(2)
  v:fill_(0)
  T.close(x, { { 3, 1 }, { 2, 5 } })
  local m = x:max(1)   -- values only
  T.close(m, { 3, 5 })
  T.close(torsh.max(x), 5)
  T.close(x:max(torsh.tensor({ 4, 0 }, "f32")), { { 4, 1 }, { 4, 5 } })
  T.close(x:min(torsh.tensor({ 4, 0 }, "f32")), { { 3, 0 }, { 2, 0 } })
end)

T.finish()
