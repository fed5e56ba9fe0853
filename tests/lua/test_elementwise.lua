-- test_elementwise.lua — binary/unary/where/clamp/conversion/matmul against
-- PyTorch's results (tests/fixtures/elementwise_ref.lua), on contiguous and
-- non-contiguous inputs, plus hand-computed edge cases and bad input.
local T = require "torsh.test"
local ref = dofile("tests/fixtures/elementwise_ref.lua")

local make = T.tensor

-- Same values, transposed memory layout (strides reversed) when 2+ dims.
local function noncontig(t)
  if t:dim() < 2 then return t end
  return t:transpose(1, -1):contiguous():transpose(1, -1)
end

local function tol_for(dt)
  if dt == "f16" then return { atol = 2e-3, rtol = 2e-3 } end
  if dt == "bf16" then return { atol = 1e-2, rtol = 1e-2 } end
  if dt == "f32" then return { atol = 1e-5, rtol = 1e-5 } end
  return { atol = 1e-9, rtol = 1e-9 }
end

local function check(got, want, label)
  T.eq(got:dtype(), want.dtype, label .. " dtype")
  T.close(got, make(want), tol_for(want.dtype), label)
end

T.case("binary ops match PyTorch (promotion, broadcasting, dtypes)", function()
  for i, c in ipairs(ref.binary) do
    local a, b = make(c.a), make(c.b)
    local label = string.format("#%d %s %s%s %s%s", i, c.op, c.a.dtype, torsh.format and "" or "", c.b.dtype, "")
    check(torsh[c.op](a, b), c.out, label)
    check(torsh[c.op](noncontig(a), noncontig(b)), c.out, label .. " (non-contiguous)")
  end
end)

T.case("unary ops match PyTorch", function()
  for i, c in ipairs(ref.unary) do
    local a = make(c.a)
    local label = string.format("#%d %s %s", i, c.op, c.a.dtype)
    check(torsh[c.op](a), c.out, label)
    check(noncontig(a)[c.op](noncontig(a)), c.out, label .. " (non-contiguous)")
  end
end)

T.case("where and clamp match PyTorch", function()
  for i, c in ipairs(ref.where) do
    check(torsh.where(make(c.cond), make(c.a), make(c.b)), c.out, "where #" .. i)
  end
  for i, c in ipairs(ref.clamp) do
    check(make(c.a):clamp(c.lo, c.hi), c.out, "clamp #" .. i)
    local x = make(c.a):clone()
    x:clamp_(c.lo, c.hi)
    check(x, c.out, "clamp_ #" .. i)
  end
end)

T.case("dtype conversions match PyTorch (rounding, saturation, wrap)", function()
  for i, c in ipairs(ref.convert) do
    local got = make(c.a):to(c.to)
    T.eq(got:dtype(), c.out.dtype)
    T.close(got, make(c.out), 0, "convert #" .. i .. " to " .. c.to)
  end
end)

T.case("matmul matches PyTorch (vector, matrix, batched, broadcast)", function()
  for i, c in ipairs(ref.matmul) do
    local a, b = make(c.a), make(c.b)
    check(torsh.matmul(a, b), c.out, "matmul #" .. i)
    check(torsh.matmul(noncontig(a), noncontig(b)), c.out, "matmul #" .. i .. " (non-contiguous)")
  end
end)

T.case("arithmetic metamethods and scalars", function()
  local a = torsh.tensor { { 1, 2 }, { 3, 4 } }:to("f32")
  T.close(a + 1, { { 2, 3 }, { 4, 5 } })
  T.close(1 - a, { { 0, -1 }, { -2, -3 } })
  T.close(a * a, { { 1, 4 }, { 9, 16 } })
  T.close(a / 2, { { 0.5, 1 }, { 1.5, 2 } })
  T.close(2 ^ a, { { 2, 4 }, { 8, 16 } })
  T.close(a % 3, { { 1, 2 }, { 0, 1 } })
  T.close(-a // 3, { { -1, -1 }, { -1, -2 } })
  T.close(-a, { { -1, -2 }, { -3, -4 } })
  T.eq(#a, 2)
  -- an integer tensor with a fractional scalar becomes f32, with an integer stays i64
  local i = torsh.tensor { 1, 2, 3 }
  T.eq(i:dtype(), "i64")
  T.eq((i + 1):dtype(), "i64")
  T.eq((i * 0.5):dtype(), "f32")
  T.eq((i / 2):dtype(), "f32")
  T.close(i * 0.5, { 0.5, 1, 1.5 })
  -- f16 stays f16 with a scalar
  T.eq((torsh.ones(2, "f16") * 3):dtype(), "f16")
  -- add with alpha
  T.close(torsh.add(a, a, 2), { { 3, 6 }, { 9, 12 } })
  -- tables are turned into tensors
  T.close(a + { 10, 20 }, { { 11, 22 }, { 13, 24 } })
end)

T.case("in-place ops write through views", function()
  local a = torsh.zeros(3, 4)
  local col = a:select(2, 2)
  col:add_(5)
  T.close(a, { { 0, 5, 0, 0 }, { 0, 5, 0, 0 }, { 0, 5, 0, 0 } })
  a:mul_(2):sub_(1)
  T.close(a:get(1, 2), 9)
  local e = torsh.ones(2, 3)
  e:exp_()
  T.close(e:get(2, 3), math.exp(1))
  T.raises(function() torsh.tensor { 1, 2 }:div_(2) end, "can't be cast")
  T.raises(function() torsh.ones(3):add_(torsh.ones(2, 3)) end, "output has shape [3]")
end)

T.case("__eq is identity; comparisons are methods", function()
  local a, b = torsh.ones(2), torsh.ones(2)
  T.ok(a == a)
  T.ok(a ~= b)
  T.close(a:eq(b), { true, true })
  T.close(a:lt(b), { false, false })
end)

T.case("errors name the op and the shapes", function()
  T.raises(function() return torsh.ones(2, 3) + torsh.ones(4) end, "add: shapes [2, 3] and [4] cannot be broadcast")
  T.raises(function() return torsh.ones(3, 4):matmul(torsh.ones(5, 6)) end, "matmul: shapes [3, 4] and [5, 6] do not line up (4 != 5)")
  T.raises(function() return torsh.ones(2, 3):bmm(torsh.ones(2, 3)) end, "bmm: shapes")
  T.raises(function() return torsh.ones(2) + "x" end, "Tensor, number or table")
  T.raises(function() return torsh.ones(2):clamp(3, 1) end, "clamp: min 3 is greater than max 1")
  T.raises(function() return torsh.zeros(-1) end, "negative size")
  T.raises(function() return torsh.zeros(1 << 40, 1 << 20) end, "too many elements")
  T.raises(function() return torsh.zeros(1 << 39) end, "more than can be allocated")
end)

T.case("large elementwise work is identical across thread counts", function()
  local n = 300000
  local a = torsh.arange(n):to("f32") / 7
  local b = torsh.arange(n):to("f32"):sqrt()
  torsh.set_num_threads(1)
  local r1 = (a * b + a:sin()):totable()
  torsh.set_num_threads(2)
  local r2 = (a * b + a:sin()):totable()
  torsh.set_num_threads(0)
  for i = 1, n, 997 do T.eq(r1[i], r2[i]) end
end)

T.finish()
