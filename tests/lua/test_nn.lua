-- test_nn.lua — convolution, pooling, normalisation and softmax against
-- PyTorch references (tests/fixtures/nn_ref.lua, made by gen_nn.py), plus
-- hand-written checks: error messages, thread-count independence, larger
-- shapes that take the parallel paths, NaN handling, method forms.
local torsh = require "torsh"
local T = require "torsh.test"

local ref = dofile("tests/fixtures/nn_ref.lua")

-- Builds a fixture tensor: values come as exact doubles, converted to the
-- case's dtype; layouts make the same values non-contiguous.
local function make(spec)
  if type(spec) ~= "table" or not spec.tensor then return spec end
  if spec.layout == "expand" then
    return torsh.tensor(spec.data, "f64"):to(spec.dtype):expand(spec.shape)
  end
  local t = torsh.tensor(spec.data, "f64"):reshape(spec.shape):to(spec.dtype)
  if spec.layout == "t" then
    t = t:transpose(-1, -2):contiguous():transpose(-1, -2)
  elseif spec.layout == "strided" then
    local shape = t:shape()
    shape[#shape] = shape[#shape] * 2
    local v = torsh.zeros(shape, spec.dtype):slice(-1, 1, -1, 2)
    v:copy_(t)
    t = v
  end
  if spec.layout and spec.layout ~= "expand" then T.ok(not t:is_contiguous(), "layout should be non-contiguous") end
  return t
end

local function expected(e, dtype)
  return torsh.tensor(e.data, "f64"):reshape(e.shape):to(dtype)
end

for _, c in ipairs(ref) do
  T.case(c.name, function()
    local args = {}
    for i = 1, c.n do args[i] = make(c.args[i]) end
    local out, idx = torsh[c.fn](table.unpack(args, 1, c.n))
    local dtype = args[1]:dtype()
    T.eq(out:dtype(), dtype, "result dtype")
    T.close(out, expected(c.out, "f64"), { atol = c.tol, rtol = c.tol })
    if c.indices then
      T.eq(idx:dtype(), "i64")
      T.close(idx, expected(c.indices, "i64"), 0)
    end
  end)
end

-- ---- convolution ------------------------------------------------------------------

T.case("conv2d method form and options in place of bias", function()
  local x = torsh.randn(1, 2, 5, 5)
  local w = torsh.randn(3, 2, 3, 3)
  T.close(x:conv2d(w, { padding = 1 }), torsh.conv2d(x, w, nil, { padding = 1 }), 0)
  T.eq(#torsh.conv2d(x, w):shape(), 4)
  T.close(x:conv2d(w, nil, { padding = { 1, 0 } }):shape(), { 1, 3, 5, 3 }, 0)
end)

-- A convolution big enough to run on several threads: same bits for any
-- thread count, and close to the same convolution in f64.
T.case("conv2d large: thread-count independent, matches f64", function()
  local x = torsh.randn(4, 32, 20, 20)
  local w = torsh.randn(48, 32, 3, 3) * 0.1
  local b = torsh.randn(48)
  local saved = torsh.get_num_threads()
  local ys = {}
  for i, n in ipairs { 1, 2, 3 } do
    torsh.set_num_threads(n)
    ys[i] = torsh.conv2d(x, w, b, { padding = 1 })
  end
  torsh.set_num_threads(saved)
  T.close(ys[2], ys[1], 0)
  T.close(ys[3], ys[1], 0)
  local y64 = torsh.conv2d(x:to("f64"), w:to("f64"), b:to("f64"), { padding = 1 })
  T.close(ys[1], y64, 1e-4)
  -- strided and grouped variants against f64 as well
  local wg = torsh.randn(48, 8, 3, 3) * 0.1
  local yg = torsh.conv2d(x, wg, nil, { stride = 2, padding = 1, groups = 4 })
  T.close(yg, torsh.conv2d(x:to("f64"), wg:to("f64"), nil, { stride = 2, padding = 1, groups = 4 }), 1e-4)
  -- 1x1: the direct path
  local w1 = torsh.randn(16, 32, 1, 1)
  T.close(torsh.conv2d(x, w1), torsh.conv2d(x:to("f64"), w1:to("f64")), 1e-4)
end)

T.case("conv2d matches a hand-computed sum", function()
  local x = torsh.arange(0, 16, 1, "f32"):reshape(1, 1, 4, 4)
  local w = torsh.ones(1, 1, 2, 2)
  T.close(torsh.conv2d(x, w, torsh.tensor({ 1 }, "f32"), { stride = 2 }), { { { { 11, 19 }, { 43, 51 } } } })
end)

T.case("conv2d rejects bad shapes and dtypes", function()
  local x = torsh.randn(2, 32, 8, 8)
  T.raises(function() torsh.conv2d(x, torsh.randn(64, 64, 3, 3)) end,
    "conv2d: input has 32 channels but weight expects 64 (weight [64, 64, 3, 3], groups 1)")
  T.raises(function() torsh.conv2d(x, torsh.randn(6, 8, 3, 3), nil, { groups = 4 }) end,
    "output channels (6, weight [6, 8, 3, 3]) are not divisible by groups (4)")
  T.raises(function() torsh.conv2d(x, torsh.randn(8, 32, 3, 3), nil, { groups = 3 }) end,
    "input channels (32) are not divisible by groups (3)")
  T.raises(function() torsh.conv2d(x, torsh.randn(8, 32, 3)) end, "conv2d: weight must be [O, C/groups, KH, KW]")
  T.raises(function() torsh.conv2d(torsh.randn(8, 8), torsh.randn(8, 8, 3, 3)) end, "conv2d: input must be")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 9, 9)) end, "is too small for weight")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), torsh.randn(5)) end, "bias must be [4]")
  T.raises(function() torsh.conv2d(x:to("i64"), torsh.randn(4, 32, 3, 3)) end, "needs floating tensors")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), nil, { padding = -1 }) end, "padding >= 0")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), nil, { stride = 0 }) end, "stride")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), nil, { stride = 2, padding = "same" }) end,
    "not supported for strided")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), nil, { padding = "full" }) end,
    "padding must be a number")
  T.raises(function() torsh.conv2d(x, torsh.randn(4, 32, 3, 3), nil, { stride = { 1, 2, 3 } }) end,
    "conv2d: stride must be an integer or a table of 2 integers")
  T.raises(function() torsh.conv1d(torsh.randn(2, 3, 5), torsh.randn(4, 2, 3)) end,
    "conv1d: input has 3 channels but weight expects 2")
end)

-- ---- pooling ------------------------------------------------------------------------

T.case("max_pool2d propagates NaN and reports its index", function()
  local x = torsh.tensor({ { { { 1, 0 / 0 }, { 3, 4 } } } }, "f32")
  local v, i = x:max_pool2d(2, { return_indices = true })
  T.ok(v:item() ~= v:item(), "NaN expected")
  T.eq(i:item(), 1)
  T.close(torsh.adaptive_max_pool2d(x, 1), { { { { 0 / 0 } } } })
end)

T.case("pools on a larger input (parallel over planes)", function()
  local x = torsh.randn(8, 16, 24, 24)
  local m = x:max_pool2d(2)
  local ref = x:reshape(8, 16, 12, 2, 12, 2):amax({ 4, 6 })
  T.close(m, ref, 0)
  local a = x:avg_pool2d(2)
  T.close(a, x:reshape(8, 16, 12, 2, 12, 2):mean({ 4, 6 }), 1e-5)
  T.close(x:adaptive_avg_pool2d(1):reshape(8, 16), x:mean({ 3, 4 }), 1e-5)
end)

T.case("pooling rejects bad arguments", function()
  local x = torsh.randn(1, 2, 6, 6)
  T.raises(function() x:max_pool2d(2, { padding = 2 }) end, "max_pool2d: padding 2 should be at most half")
  T.raises(function() x:to("i64"):max_pool2d(2) end, "max_pool2d: needs a floating dtype, got i64")
  T.raises(function() torsh.randn(6, 6):max_pool2d(2) end, "max_pool2d: input must be [N, C, H, W]")
  T.raises(function() x:max_pool2d(7) end, "too small for kernel")
  T.raises(function() x:max_pool2d(0) end, "kernel, stride and dilation must be >= 1")
  T.raises(function() x:avg_pool2d(2, { dilation = 2 }) end, "avg_pool2d: there is no dilation option")
  T.raises(function() x:adaptive_avg_pool2d(0) end, "output size must be >= 1")
  T.raises(function() x:adaptive_max_pool2d({ 1, 2, 3 }) end, "adaptive_max_pool2d: output size must be an integer or a table of 2")
  T.raises(function() torsh.randn(3):max_pool1d(2) end, "max_pool1d: input must be [N, C, L]")
  T.raises(function() torsh.randn(2, 3, 4):avg_pool1d(2, { padding = 3 }) end, "avg_pool1d: padding 3")
end)

-- ---- normalisation --------------------------------------------------------------------

T.case("layer_norm and group_norm of a larger input", function()
  local x = torsh.randn(16, 64, 33)
  local y = x:layer_norm(33)
  T.close(y:mean(-1), torsh.zeros(16, 64), 1e-5)
  T.close(y:var(-1, { correction = 0 }), torsh.ones(16, 64), 1e-3)
  local g = torsh.randn(4, 8, 5, 5):group_norm(2)
  T.close(g:reshape(4, 2, 100):mean(-1), torsh.zeros(4, 2), 1e-5)
end)

T.case("normalisation rejects bad arguments", function()
  local x = torsh.randn(2, 3, 4)
  T.raises(function() x:batch_norm(torsh.zeros(4), torsh.ones(3)) end,
    "batch_norm: running_mean must be [3], got [4]")
  T.raises(function() x:batch_norm(torsh.zeros(3), torsh.ones(3), torsh.ones(2)) end, "batch_norm: weight must be [3]")
  T.raises(function() torsh.randn(3):batch_norm(torsh.zeros(3), torsh.ones(3)) end, "at least 2 dims")
  T.raises(function() x:to("i32"):batch_norm(torsh.zeros(3), torsh.ones(3)) end, "needs a floating dtype, got i32")
  T.raises(function() x:layer_norm({ 3, 5 }) end, "layer_norm: normalized_shape [3, 5] does not match")
  T.raises(function() x:layer_norm(4, torsh.ones(3)) end, "layer_norm: weight must be [4], got [3]")
  T.raises(function() x:group_norm(2) end, "group_norm: 3 channels cannot be split into 2 groups")
  T.raises(function() x:group_norm(3, torsh.ones(4)) end, "group_norm: weight must be [3]")
end)

-- ---- softmax ------------------------------------------------------------------------------

T.case("softmax of a larger input sums to one along each dim", function()
  local x = torsh.randn(64, 300) * 5
  T.close(x:softmax(-1):sum(-1), torsh.ones(64), 1e-5)
  T.close(x:softmax(1):sum(1), torsh.ones(300), 1e-5)
  T.close(x:log_softmax(2):exp(), x:softmax(2), 1e-5)
  T.close(torsh.tensor(3.0):softmax(1), 1)
end)

T.case("softmax rejects bad arguments", function()
  local x = torsh.randn(2, 3)
  T.raises(function() x:softmax(3) end, "dim 3 is out of range")
  T.raises(function() x:softmax(0) end, "1-based")
  T.raises(function() x:to("i64"):log_softmax(1) end, "log_softmax: needs a floating dtype, got i64")
end)

T.finish()
