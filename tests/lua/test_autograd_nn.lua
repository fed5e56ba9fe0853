-- test_autograd_nn.lua — gradients of the neural-network ops: finite-difference
-- checks in f64 (torsh.autograd.gradcheck) for convolution, pooling, batch /
-- layer / group norm, softmax and the fused losses over the options that
-- change the backward; PyTorch's forward values and gradients at f32
-- (tests/fixtures/autograd_nn_ref.lua, made by gen_autograd_nn.py); running
-- statistics; other dtypes and non-contiguous inputs; independence from the
-- thread count; bad input.
local torsh = require "torsh"
local T = require "torsh.test"
local gradcheck = torsh.autograd.gradcheck

torsh.manual_seed(7)
local function leaf(...) return torsh.randn(...):to("f64"):requires_grad_() end
local function positive(...) return (torsh.rand(...):to("f64") + 0.5):requires_grad_() end
local function check(name, fn, inputs, opts)
  local ok, err = gradcheck(fn, inputs, opts)
  if not ok then error(name .. ": " .. err, 2) end
end
local function i64(t) return torsh.tensor(t, "i64") end

-- ---- convolution ---------------------------------------------------------------------

T.case("conv2d gradients: padding, stride, dilation, bias", function()
  local conv = function(o) return function(x, w, b) return torsh.conv2d(x, w, b, o) end end
  check("padding 1", conv { padding = 1 }, { leaf(2, 3, 5, 5), leaf(4, 3, 3, 3), leaf(4) })
  check("stride 2", conv { stride = 2 }, { leaf(2, 2, 7, 6), leaf(3, 2, 3, 3), leaf(3) })
  check("stride {2,1} padding {1,2}", conv { stride = { 2, 1 }, padding = { 1, 2 } },
        { leaf(1, 2, 6, 5), leaf(3, 2, 3, 2), leaf(3) })
  check("dilation 2 padding 2", conv { dilation = 2, padding = 2 }, { leaf(2, 2, 6, 6), leaf(2, 2, 3, 3), leaf(2) })
  check("stride 2 dilation {1,2} padding 1", conv { stride = 2, dilation = { 1, 2 }, padding = 1 },
        { leaf(2, 2, 7, 8), leaf(3, 2, 2, 3), leaf(3) })
  check("padding larger than the kernel span", conv { padding = 3 }, { leaf(1, 2, 4, 4), leaf(2, 2, 3, 3), leaf(2) })
  check("no bias", function(x, w) return torsh.conv2d(x, w, nil, { padding = 1 }) end, { leaf(2, 3, 4, 4), leaf(2, 3, 3, 3) })
  check("1x1", function(x, w, b) return torsh.conv2d(x, w, b) end, { leaf(2, 3, 4, 4), leaf(5, 3, 1, 1), leaf(5) })
  check("1x1 stride 2", conv { stride = 2 }, { leaf(2, 3, 5, 4), leaf(2, 3, 1, 1), leaf(2) })
  check("unbatched", conv { padding = 1 }, { leaf(2, 4, 4), leaf(3, 2, 3, 3), leaf(3) })
  check("padding same, even kernel", conv { padding = "same" }, { leaf(1, 2, 5, 5), leaf(2, 2, 2, 4), leaf(2) })
end)

T.case("conv2d gradients: groups and depthwise", function()
  local conv = function(o) return function(x, w, b) return torsh.conv2d(x, w, b, o) end end
  check("groups 2", conv { groups = 2, padding = 1 }, { leaf(2, 4, 4, 4), leaf(6, 2, 3, 3), leaf(6) })
  check("groups 2 stride 2", conv { groups = 2, stride = 2, padding = 1 }, { leaf(2, 4, 5, 5), leaf(4, 2, 3, 3), leaf(4) })
  check("depthwise", conv { groups = 3, padding = 1 }, { leaf(2, 3, 5, 5), leaf(3, 1, 3, 3), leaf(3) })
  check("depthwise multiplier 2, stride 2", conv { groups = 2, stride = 2 }, { leaf(2, 2, 6, 6), leaf(4, 1, 3, 3), leaf(4) })
  check("grouped 1x1", conv { groups = 2 }, { leaf(2, 4, 3, 3), leaf(4, 2, 1, 1), leaf(4) })
end)

T.case("conv2d gradients reach only the inputs that need them", function()
  local x, w, b = torsh.randn(2, 3, 5, 5, "f64"), leaf(4, 3, 3, 3), torsh.randn(4, "f64")
  check("weight only", function(xx, ww) return torsh.conv2d(xx, ww, b, { padding = 1 }) end, { x, w })
  check("input only", function(xx) return torsh.conv2d(xx, w:detach(), b, { padding = 1 }) end, { leaf(2, 3, 5, 5) })
  check("bias only", function(bb) return torsh.conv2d(x, w:detach(), bb) end, { leaf(4) })
  local y = torsh.conv2d(x, w, b)
  y:sum():backward()
  T.ok(w:grad() ~= nil)
  T.eq(y:grad_fn(), "conv2d")
end)

T.case("conv1d gradients", function()
  local conv = function(o) return function(x, w, b) return torsh.conv1d(x, w, b, o) end end
  check("padding 1", conv { padding = 1 }, { leaf(2, 3, 7), leaf(4, 3, 3), leaf(4) })
  check("stride 2 dilation 2", conv { stride = 2, dilation = 2, padding = 2 }, { leaf(2, 2, 9), leaf(3, 2, 3), leaf(3) })
  check("groups", conv { groups = 2 }, { leaf(2, 4, 6), leaf(4, 2, 2), leaf(4) })
  check("depthwise", conv { groups = 3, padding = 1 }, { leaf(1, 3, 5), leaf(3, 1, 3), leaf(3) })
  check("unbatched", conv { padding = 1 }, { leaf(2, 6), leaf(3, 2, 3), leaf(3) })
  check("padding same, odd total", conv { padding = "same" }, { leaf(1, 2, 6), leaf(2, 2, 4), leaf(2) })
end)

-- ---- pooling ---------------------------------------------------------------------------

T.case("max pooling gradients", function()
  local mp = function(k, o) return function(x) return torsh.max_pool2d(x, k, o) end end
  check("2x2", mp(2), { leaf(2, 3, 4, 4) })
  check("3x3 stride 2 padding 1", mp(3, { stride = 2, padding = 1 }), { leaf(2, 2, 7, 6) })
  check("ceil_mode", mp(3, { stride = 2, ceil_mode = true }), { leaf(1, 2, 6, 6) })
  check("ceil_mode with padding", mp(3, { stride = 2, padding = 1, ceil_mode = true }), { leaf(1, 2, 6, 5) })
  check("dilation 2", mp(2, { stride = 1, dilation = 2 }), { leaf(1, 2, 5, 5) })
  check("overlapping windows", mp({ 3, 2 }, { stride = 1 }), { leaf(1, 2, 4, 5) })
  check("unbatched", mp(2), { leaf(2, 4, 4) })
  check("1-D", function(x) return torsh.max_pool1d(x, 3, { stride = 2, padding = 1, ceil_mode = true }) end,
        { leaf(2, 3, 8) })
  check("adaptive max 5x7 -> 3x2", function(x) return torsh.adaptive_max_pool2d(x, { 3, 2 }) end, { leaf(2, 2, 5, 7) })
  check("adaptive max 4x4 -> 3", function(x) return torsh.adaptive_max_pool2d(x, 3) end, { leaf(1, 2, 4, 4) })
  -- the values with return_indices are differentiable too
  check("return_indices", function(x) local v, i = torsh.max_pool2d(x, 2, { return_indices = true }); return v end,
        { leaf(1, 2, 4, 4) })
end)

T.case("max pooling routes the gradient to the argmax", function()
  local x = torsh.tensor({ { { { 1, 5, 2, 0 }, { 3, 4, 8, 8 }, { 0, 0, 1, 1 }, { 9, 0, 1, 1 } } } }, "f32"):requires_grad_()
  local y, idx = torsh.max_pool2d(x, 2, { return_indices = true })
  T.close(y, { { { { 5, 8 }, { 9, 1 } } } })
  T.eq(idx:dtype(), "i64")
  T.close(idx, { { { { 1, 6 }, { 12, 10 } } } })   -- ties: the first one
  y:backward(torsh.tensor({ { { { 1, 2 }, { 3, 4 } } } }, "f32"))
  T.close(x:grad(), { { { { 0, 1, 0, 0 }, { 0, 0, 2, 0 }, { 0, 0, 4, 0 }, { 3, 0, 0, 0 } } } })
  -- overlapping windows add up at a shared maximum
  local z = torsh.tensor({ { { 1, 9, 1, 0 } } }, "f32"):requires_grad_()
  torsh.max_pool1d(z, 2, { stride = 1 }):sum():backward()
  T.close(z:grad(), { { { 0, 2, 1, 0 } } })
  -- NaN wins, like PyTorch
  local n = torsh.tensor({ { { { 1, 0 / 0 }, { 2, 3 } } } }, "f32"):requires_grad_()
  local v, i = torsh.max_pool2d(n, 2, { return_indices = true })
  T.ok(v:item() ~= v:item())
  T.eq(i:item(), 1)
end)

T.case("average pooling gradients", function()
  local ap = function(k, o) return function(x) return torsh.avg_pool2d(x, k, o) end end
  check("2x2", ap(2), { leaf(2, 2, 4, 4) })
  check("3x3 stride 2 padding 1, count_include_pad", ap(3, { stride = 2, padding = 1 }), { leaf(1, 2, 7, 6) })
  check("count_include_pad false", ap(3, { stride = 2, padding = 1, count_include_pad = false }), { leaf(1, 2, 7, 6) })
  check("ceil_mode", ap(3, { stride = 2, ceil_mode = true }), { leaf(1, 2, 6, 6) })
  check("ceil_mode padding, no pad count", ap(3, { stride = 2, padding = 1, ceil_mode = true, count_include_pad = false }),
        { leaf(1, 2, 6, 5) })
  check("ceil_mode padding, pad count", ap(3, { stride = 2, padding = 1, ceil_mode = true }), { leaf(1, 2, 6, 5) })
  check("unbatched", ap(2, { stride = 1 }), { leaf(2, 3, 3) })
  check("1-D", function(x) return torsh.avg_pool1d(x, 3, { stride = 2, padding = 1, count_include_pad = false }) end,
        { leaf(2, 2, 7) })
  check("adaptive avg 5x7 -> 3x2", function(x) return torsh.adaptive_avg_pool2d(x, { 3, 2 }) end, { leaf(2, 2, 5, 7) })
  check("adaptive avg 6x6 -> 4", function(x) return torsh.adaptive_avg_pool2d(x, 4) end, { leaf(1, 2, 6, 6) })
  check("adaptive avg -> 1 (global)", function(x) return torsh.adaptive_avg_pool2d(x, 1) end, { leaf(2, 3, 3, 2) })
end)

-- ---- normalisation ------------------------------------------------------------------------

T.case("batch_norm_train gradients, with and without affine", function()
  check("affine [N,C,H,W]", function(x, w, b) return torsh.batch_norm_train(x, w, b) end,
        { leaf(3, 2, 3, 2), leaf(2), leaf(2) })
  check("no affine", function(x) return torsh.batch_norm_train(x) end, { leaf(3, 2, 2, 2) })
  check("weight only", function(x, w) return torsh.batch_norm_train(x, w, nil) end, { leaf(4, 3), leaf(3) })
  check("[N,C,L] with running stats", function(x, w, b)
    return torsh.batch_norm_train(x, w, b, torsh.zeros(2, "f64"), torsh.ones(2, "f64"), 0.1, 1e-3)
  end, { leaf(3, 2, 4), leaf(2), leaf(2) })
  local fixed = torsh.randn(4, 2, 3, "f64")
  check("parameters only", function(w, b) return torsh.batch_norm_train(fixed, w, b) end, { leaf(2), leaf(2) })
  local y = torsh.batch_norm_train(leaf(4, 3), leaf(3), leaf(3))
  T.eq(y:grad_fn(), "batch_norm_train")
end)

T.case("batch_norm_train updates the running statistics like PyTorch", function()
  local x = torsh.tensor({ { 1, 2 }, { 3, 6 }, { 5, 1 }, { 7, 3 } }, "f64")
  local rm, rv = torsh.tensor({ 1, 0 }, "f64"), torsh.tensor({ 1, 2 }, "f64")
  local y = torsh.batch_norm_train(x, nil, nil, rm, rv, 0.25, 0)
  -- mean (4, 3); biased var (5, 3.5); unbiased (20/3, 14/3)
  T.close(rm, { 0.75 * 1 + 0.25 * 4, 0.25 * 3 })
  T.close(rv, { 0.75 + 0.25 * 20 / 3, 0.75 * 2 + 0.25 * 14 / 3 }, 1e-12)
  T.close(y:select(2, 1), { -3 / math.sqrt(5), -1 / math.sqrt(5), 1 / math.sqrt(5), 3 / math.sqrt(5) }, 1e-12)
  -- f32 running stats of an f64 input, and a non-contiguous running buffer
  local buf = torsh.zeros(4)
  local rv32 = buf:slice(1, 1, -1, 2)
  torsh.batch_norm_train(x, nil, nil, nil, rv32, 1.0, 0)
  T.close(buf, { 20 / 3, 0, 14 / 3, 0 }, 1e-6)
  -- the update happens without a graph and does not need grad mode
  torsh.no_grad(function() torsh.batch_norm_train(x, nil, nil, rm, nil, 0.5) end)
  T.close(rm, { 0.5 * 1.75 + 0.5 * 4, 0.5 * 0.75 + 0.5 * 3 })
end)

T.case("batch_norm (inference) gradients, including the statistics", function()
  check("affine", function(x, m, v, w, b) return torsh.batch_norm(x, m, v, w, b) end,
        { leaf(3, 2, 2, 2), leaf(2), positive(2), leaf(2), leaf(2) })
  local m, v = torsh.randn(3, "f64"), torsh.rand(3, "f64") + 1
  check("no affine", function(x) return torsh.batch_norm(x, m, v) end, { leaf(2, 3, 4) })
  check("statistics only", function(mm, vv) return torsh.batch_norm(torsh.ones(2, 3, "f64"), mm, vv) end,
        { leaf(3), positive(3) })
  check("eps", function(x, w) return torsh.batch_norm(x, torsh.zeros(2, "f64"), torsh.ones(2, "f64"), w, nil, 0.5) end,
        { leaf(4, 2), leaf(2) })
end)

T.case("layer_norm gradients", function()
  check("affine, last dim", function(x, w, b) return torsh.layer_norm(x, 4, w, b) end, { leaf(3, 4), leaf(4), leaf(4) })
  check("affine, last two dims", function(x, w, b) return torsh.layer_norm(x, { 2, 3 }, w, b) end,
        { leaf(2, 2, 3), leaf(2, 3), leaf(2, 3) })
  check("no affine", function(x) return torsh.layer_norm(x, { 5 }) end, { leaf(2, 3, 5) })
  check("bias only, eps", function(x, b) return torsh.layer_norm(x, 3, nil, b, 0.1) end, { leaf(4, 3), leaf(3) })
end)

T.case("group_norm gradients", function()
  check("2 groups, affine", function(x, w, b) return torsh.group_norm(x, 2, w, b) end,
        { leaf(2, 4, 3), leaf(4), leaf(4) })
  check("1 group, no affine", function(x) return torsh.group_norm(x, 1) end, { leaf(2, 3, 2, 2) })
  check("groups == channels, affine", function(x, w, b) return torsh.group_norm(x, 3, w, b) end,
        { leaf(2, 3, 4), leaf(3), leaf(3) })
  check("[N,C] input, weight only", function(x, w) return torsh.group_norm(x, 2, w) end, { leaf(3, 4), leaf(4) })
end)

T.case("softmax and log_softmax gradients on each dim", function()
  for d = 1, 3 do
    check("softmax dim " .. d, function(x) return torsh.softmax(x, d) end, { leaf(3, 4, 2) })
    check("log_softmax dim " .. d, function(x) return torsh.log_softmax(x, d) end, { leaf(3, 4, 2) })
  end
  check("softmax dim -1 of a long row", function(x) return torsh.softmax(x, -1) end, { leaf(2, 70) })
  check("log_softmax 1-D", function(x) return torsh.log_softmax(x, 1) end, { leaf(5) })
  check("softmax of a transposed input", function(x) return torsh.softmax(x:t(), 2) end, { leaf(4, 3) })
  T.eq(torsh.softmax(leaf(2, 3), 2):grad_fn(), "softmax")
end)

-- ---- losses -------------------------------------------------------------------------------

T.case("cross_entropy gradients: weight, ignore_index, label smoothing, reductions", function()
  local t, t1 = i64 { 0, 2, 1, -100, 2 }, i64 { 0, 2, 1, 1, 2 }
  local w = torsh.tensor({ 1, 2, 0.5 }, "f64")
  for _, red in ipairs { "mean", "sum", "none" } do
    for _, o in ipairs {
      {}, { weight = w }, { label_smoothing = 0.2 }, { weight = w, label_smoothing = 0.1 },
      { ignore_index = 1 }, { ignore_index = 1, weight = w, label_smoothing = 0.3 },
    } do
      o.reduction = red
      local desc = red .. (o.weight and " weight" or "") .. (o.label_smoothing and " smoothing" or "")
                   .. (o.ignore_index and " ignore 1" or "")
      local tt = o.ignore_index and t1 or t
      check("cross_entropy " .. desc, function(x) return torsh.cross_entropy(x, tt, o) end, { leaf(5, 3) })
    end
  end
end)

T.case("cross_entropy gradients: [N,C,d...] and unbatched inputs", function()
  local t = torsh.tensor({ { 0, 2, 1 }, { 1, -100, 0 } }, "i64")
  check("[N,C,d] mean", function(x) return torsh.cross_entropy(x, t) end, { leaf(2, 3, 3) })
  check("[N,C,d] none, weight, smoothing", function(x)
    return torsh.cross_entropy(x, t, { reduction = "none", weight = torsh.tensor({ 1, 3, 2 }, "f64"), label_smoothing = 0.1 })
  end, { leaf(2, 3, 3) })
  local t2 = torsh.randint(0, 4, { 2, 2, 3 }):to("i64")
  check("[N,C,d1,d2] sum", function(x) return torsh.cross_entropy(x, t2, { reduction = "sum" }) end, { leaf(2, 4, 2, 3) })
  check("[C] with a 0-dim target", function(x) return torsh.cross_entropy(x, torsh.tensor(2, "i64")) end, { leaf(4) })
  check("i32 targets", function(x) return torsh.cross_entropy(x, torsh.tensor({ 1, 0 }, "i32")) end, { leaf(2, 3) })
end)

T.case("cross_entropy values: stable for large logits, 'mean' over counted weights", function()
  local x = torsh.tensor({ { 1000, 0 }, { 0, 1000 } }, "f64")
  T.close(torsh.cross_entropy(x, i64 { 0, 1 }), 0, 1e-12)
  T.close(torsh.cross_entropy(x, i64 { 1, 0 }), 1000, 1e-9)
  local z = torsh.tensor({ { 0, 0 }, { 0, 0 }, { 0, 0 } }, "f64")
  local w = torsh.tensor({ 1, 3 }, "f64")
  -- each counted loss is log 2; mean divides by the counted weights (1 + 3)
  T.close(torsh.cross_entropy(z, i64 { 0, 1, -100 }, { weight = w }), math.log(2), 1e-12)
  T.close(torsh.cross_entropy(z, i64 { 0, 1, -100 }, { weight = w, reduction = "sum" }), 4 * math.log(2), 1e-12)
  T.close(torsh.cross_entropy(z, i64 { 0, 1, -100 }, { reduction = "none" }), { math.log(2), math.log(2), 0 }, 1e-12)
  -- everything ignored: 0 / 0 as in PyTorch
  local all = torsh.cross_entropy(z, i64 { -100, -100, -100 })
  T.ok(all:item() ~= all:item())
  T.eq(torsh.cross_entropy(z:to("f32"), i64 { 0, 1, 1 }):dtype(), "f32")
end)

T.case("nll_loss gradients and values", function()
  local t = i64 { 0, 2, 1, -100, 2 }
  local w = torsh.tensor({ 1, 2, 0.5 }, "f64")
  for _, red in ipairs { "mean", "sum", "none" } do
    check("nll_loss " .. red, function(x) return torsh.nll_loss(x, t, { reduction = red, weight = w }) end, { leaf(5, 3) })
  end
  check("nll_loss [N,C,d]", function(x) return torsh.nll_loss(x, torsh.tensor({ { 0, 1 }, { 2, 2 } }, "i64")) end,
        { leaf(2, 3, 2) })
  local lp = torsh.tensor({ { -1, -2 }, { -3, -4 } }, "f64")
  T.close(torsh.nll_loss(lp, i64 { 1, 0 }), 2.5)
  T.close(torsh.nll_loss(lp, i64 { 1, 0 }, { weight = torsh.tensor({ 1, 3 }, "f64") }), (6 + 3) / 4)
  -- cross_entropy == nll_loss of log_softmax
  local x = torsh.randn(4, 5, "f64")
  local tt = i64 { 4, 0, 3, 3 }
  T.close(torsh.cross_entropy(x, tt), torsh.nll_loss(torsh.log_softmax(x, 2), tt), 1e-12)
end)

-- ---- PyTorch references (f32) ------------------------------------------------------------------

local ref = dofile("tests/fixtures/autograd_nn_ref.lua")
local function ft(spec, dtype)
  return torsh.tensor(spec.data, "f64"):reshape(spec.shape):to(spec.int and "i64" or (dtype or "f32"))
end

-- Runs one fixture case in dtype dt; returns the output, the named leaves and extras.
local function run_case(c, dt)
  local L = {}
  for k, v in pairs(c.inputs) do L[k] = ft(v, dt):requires_grad_() end
  local o, out, extra = c.opts or {}, nil, {}
  if c.fn == "conv2d" or c.fn == "conv1d" then
    out = torsh[c.fn](L.x, L.w, L.b, o)
  elseif c.fn == "batch_norm_train" then
    extra.rm, extra.rv = ft(c.running_mean), ft(c.running_var)
    out = torsh.batch_norm_train(L.x, L.w, L.b, extra.rm, extra.rv, c.momentum, c.eps)
  elseif c.fn == "cross_entropy" or c.fn == "nll_loss" then
    local opts = { reduction = o.reduction, ignore_index = o.ignore_index, label_smoothing = o.label_smoothing }
    if o.weight then opts.weight = torsh.tensor(o.weight, "f64"):to(dt or "f32") end
    out = torsh[c.fn](L.x, ft(c.target), opts)
  elseif c.fn == "layer_norm" then
    out = torsh.layer_norm(L.x, o.shape, L.w, L.b)
  elseif c.fn == "group_norm" then
    out = torsh.group_norm(L.x, o.groups, L.w, L.b)
  elseif c.fn == "max_pool2d" or c.fn == "avg_pool2d" then
    out = torsh[c.fn](L.x, o.kernel, o)
  elseif c.fn == "adaptive_avg_pool2d" or c.fn == "adaptive_max_pool2d" then
    out = torsh[c.fn](L.x, o.size)
  elseif c.fn == "softmax" or c.fn == "log_softmax" then
    out = torsh[c.fn](L.x, o.dim)
  end
  out:backward(c.gy and ft(c.gy, dt) or nil)
  return out, L, extra
end

for _, c in ipairs(ref) do
  T.case("PyTorch reference: " .. c.name, function()
    local out, L, extra = run_case(c)
    local tol = { atol = 2e-5, rtol = 2e-4 }
    T.close(out, ft(c.out), tol, "output")
    for k, g in pairs(c.grads) do T.close(L[k]:grad(), ft(g), tol, "grad " .. k) end
    if c.new_running_mean then
      T.close(extra.rm, ft(c.new_running_mean), tol, "running_mean")
      T.close(extra.rv, ft(c.new_running_var), tol, "running_var")
    end
  end)
end

T.case("f16, bf16 and f64 run the same backward (gradients in the input dtype)", function()
  for _, c in ipairs(ref) do
    if c.fn == "conv2d" or c.fn == "batch_norm_train" or c.fn == "cross_entropy" then
      for _, dt in ipairs { "f64", "bf16", "f16" } do
        local out, L = run_case(c, dt)
        T.eq(out:dtype(), dt, c.name)
        local tol = dt == "f64" and { atol = 2e-5, rtol = 2e-4 } or { atol = 0.1, rtol = 0.05 }
        for k, g in pairs(c.grads) do
          T.eq(L[k]:grad():dtype(), dt, c.name .. " grad " .. k)
          T.close(L[k]:grad():to("f64"), ft(g, "f64"), tol, c.name .. " " .. dt .. " grad " .. k)
        end
      end
    end
  end
end)

-- ---- layouts, threads, larger shapes -------------------------------------------------------------

T.case("non-contiguous inputs give the gradients of their contiguous copies", function()
  local x = torsh.randn(2, 3, 6, 5, "f64")
  local xt = x:transpose(3, 4):contiguous():transpose(3, 4)   -- same values, other strides
  T.ok(not xt:is_contiguous())
  local w = torsh.randn(4, 3, 3, 3, "f64")
  local function grads(input)
    local xi, wi = input:detach():requires_grad_(), w:detach():requires_grad_()
    local y = torsh.max_pool2d(torsh.batch_norm_train(torsh.conv2d(xi, wi, nil, { padding = 1 })), 2)
    y:backward(torsh.ones(y:shape(), "f64"))
    return xi:grad(), wi:grad()
  end
  local gx1, gw1 = grads(x)
  local gx2, gw2 = grads(xt)
  T.close(gx2, gx1, 1e-12)
  T.close(gw2, gw1, 1e-12)
  check("conv2d of a sliced input", function(a, b) return torsh.conv2d(a:slice(4, 1, -1, 2), b) end,
        { leaf(1, 2, 4, 9), leaf(2, 2, 2, 2) })
  check("cross_entropy of transposed logits", function(a) return torsh.cross_entropy(a:t(), i64 { 1, 0, 2 }) end,
        { leaf(3, 3) })
end)

T.case("gradients do not depend on the thread count", function()
  local x = torsh.randn(9, 16, 12, 12)
  local w, b = torsh.randn(24, 16, 3, 3) * 0.1, torsh.randn(24)
  local bw, bb = torsh.randn(24), torsh.randn(24)
  local t = torsh.randint(0, 24, { 9 }):to("i64")
  local function run(threads)
    torsh.set_num_threads(threads)
    local xi, wi, bi = x:detach():requires_grad_(), w:detach():requires_grad_(), b:detach():requires_grad_()
    local bwi, bbi = bw:detach():requires_grad_(), bb:detach():requires_grad_()
    local h = torsh.conv2d(xi, wi, bi, { padding = 1, stride = 2 })
    h = torsh.batch_norm_train(h, bwi, bbi):relu()
    h = torsh.max_pool2d(h, 2)
    h = torsh.layer_norm(h, { 3, 3 })
    local loss = torsh.cross_entropy(torsh.adaptive_avg_pool2d(h, 1):flatten(2), t, { label_smoothing = 0.1 })
    loss:backward()
    return { loss, xi:grad(), wi:grad(), bi:grad(), bwi:grad(), bbi:grad() }
  end
  local before = torsh.get_num_threads()
  local one, two, three = run(1), run(2), run(3)
  torsh.set_num_threads(before)
  for i = 1, #one do
    T.close(two[i], one[i], 0, "2 threads, result " .. i)
    T.close(three[i], one[i], 0, "3 threads, result " .. i)
  end
end)

T.case("larger convolutions: f32 gradients agree with f64 (parallel paths)", function()
  for _, o in ipairs { { padding = 1 }, { stride = 2, padding = 1 }, { groups = 4, padding = 2, dilation = 2 }, {} } do
    local x = torsh.randn(6, 8, 20, 18, "f64")
    local w = torsh.randn(12, 8 // (o.groups or 1), 3, 3, "f64") * 0.2
    local g
    local function grads(dt)
      local xi, wi, bi = x:to(dt):requires_grad_(), w:to(dt):requires_grad_(), torsh.zeros(12, dt):requires_grad_()
      local y = torsh.conv2d(xi, wi, bi, o)
      g = g or torsh.randn(y:shape(), "f64")
      y:backward(g:to(dt))
      return xi:grad():to("f64"), wi:grad():to("f64"), bi:grad():to("f64")
    end
    local a1, a2, a3 = grads("f64")
    local b1, b2, b3 = grads("f32")
    T.close(b1, a1, { atol = 1e-4, rtol = 1e-4 })
    T.close(b2, a2, { atol = 1e-3, rtol = 1e-4 })
    T.close(b3, a3, { atol = 1e-3, rtol = 1e-4 })
  end
end)

T.case("the functional forms use the fused kernels", function()
  local F = require "torsh.nn.functional"
  local x = leaf(4, 3, 2, 2)
  local rm, rv = torsh.zeros(3, "f64"), torsh.ones(3, "f64")
  local y = F.batch_norm(x, rm, rv, nil, nil, true, 0.1, 1e-5)
  T.eq(y:grad_fn(), "batch_norm_train")
  T.ok(rm:abs():sum():item() > 0)
  local l = F.cross_entropy(leaf(3, 4), i64 { 0, 1, 3 }, { label_smoothing = 0.1 })
  T.eq(l:grad_fn(), "cross_entropy")
end)

T.case("graphs of the nn ops are freed with their results", function()
  collectgarbage()
  local before = torsh.memory().live
  do
    local w = torsh.randn(8, 3, 3, 3):requires_grad_()
    for _ = 1, 5 do
      local x = torsh.randn(4, 3, 16, 16)
      local y = torsh.max_pool2d(torsh.batch_norm_train(torsh.conv2d(x, w, nil, { padding = 1 })), 2)
      local loss = torsh.cross_entropy(y:flatten(2), torsh.zeros(4, "i64"))
      loss:backward()
    end
    w:set_grad(nil)
  end
  collectgarbage()
  collectgarbage()
  T.ok(torsh.memory().live <= before + 4096, "memory held after the graphs are gone")
end)

-- ---- bad input ----------------------------------------------------------------------------------

T.case("losses reject bad input", function()
  local x = torsh.randn(3, 4)
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 4, 1 }) end, "target 4 is out of bounds for 4 classes")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, -1, 1 }) end, "target -1 is out of bounds")
  T.raises(function() torsh.cross_entropy(x, torsh.tensor({ 0, 1, 1 }, "f32")) end, "target must hold integer class indices")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, -100, 1 }, { ignore_index = 1 }) end, "target -100 is out of bounds")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 1 }) end, "target must be [3] for input [3, 4], got [2]")
  T.raises(function() torsh.cross_entropy(torsh.randn(2, 3, 4), i64 { 0, 1 }) end, "target must be [2, 4]")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 1, 1 }, { weight = torsh.ones(3) }) end,
           "weight must be [4] (one value per class), got [3]")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 1, 1 }, { reduction = "avg" }) end,
           "reduction must be \"none\", \"mean\" or \"sum\"")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 1, 1 }, { label_smoothing = 1.5 }) end,
           "label_smoothing must be in [0, 1]")
  T.raises(function() torsh.cross_entropy(x, i64 { 0, 1, 1 }, { weight = 3 }) end, "weight must be a tensor")
  T.raises(function() torsh.cross_entropy(x:to("i64"), i64 { 0, 1, 1 }) end, "input needs a floating dtype")
  T.raises(function() torsh.nll_loss(x, i64 { 0, 9, 1 }) end, "nll_loss: target 9 is out of bounds")
  T.raises(function() torsh.nll_loss(torsh.tensor(1.0), torsh.tensor(0, "i64")) end, "0-dim")
end)

T.case("batch_norm_train rejects bad input", function()
  T.raises(function() torsh.batch_norm_train(torsh.randn(1, 3)) end, "expected more than 1 value per channel when training")
  T.raises(function() torsh.batch_norm_train(torsh.randn(4)) end, "at least 2 dims")
  T.raises(function() torsh.batch_norm_train(torsh.randn(4, 3), torsh.ones(2)) end, "weight must be [3], got [2]")
  T.raises(function() torsh.batch_norm_train(torsh.randn(4, 3), nil, nil, torsh.zeros(4)) end,
           "running_mean must be [3]")
  T.raises(function() torsh.batch_norm_train(torsh.randn(4, 3):to("i32")) end, "input needs a floating dtype")
  T.raises(function() torsh.batch_norm_train(torsh.randn(4, 3), nil, nil, nil, torsh.ones(3, "i64")) end,
           "running_var needs a floating dtype")
end)

T.case("recorded ops keep the plain ops' argument checks", function()
  local w = torsh.randn(4, 3, 3, 3):requires_grad_()
  T.raises(function() torsh.conv2d(torsh.randn(2, 5, 8, 8), w) end, "input has 5 channels but weight expects 3")
  T.raises(function() torsh.max_pool2d(torsh.randn(2, 3, 8, 8):requires_grad_(), 3, { padding = 2 }) end,
           "padding 2 should be at most half of the kernel size 3")
  T.raises(function() torsh.max_pool2d(torsh.randn(8, 8):requires_grad_(), 2) end, "input must be [N, C, H, W]")
  T.raises(function() torsh.adaptive_max_pool2d(torsh.randn(1, 2, 4, 4):requires_grad_(), 0) end,
           "output size must be >= 1")
  T.raises(function() torsh.max_pool1d(torsh.randn(2, 3, 4):to("i32"), 2) end, "needs a floating dtype")
  T.raises(function() torsh.softmax(torsh.randn(2, 3):requires_grad_(), 3) end, "out of range")
end)

T.finish()
