-- test_autograd.lua — gradients of every differentiable core op checked by
-- finite differences in f64 (torsh.autograd.gradcheck), and the engine's
-- semantics: accumulation, non-scalar roots, retain_graph, no_grad, detach,
-- leaves vs results, in-place protection, graph release.
local T = require "torsh.test"
local gradcheck = torsh.autograd.gradcheck

torsh.manual_seed(3)
local function leaf(...) return torsh.randn(...):to("f64"):requires_grad_() end
local function positive(...) return (torsh.rand(...):to("f64") + 0.5):requires_grad_() end
local function check(name, fn, inputs, opts)
  local ok, err = gradcheck(fn, inputs, opts)
  if not ok then error(name .. ": " .. err, 2) end
end

T.case("binary ops, with broadcasting", function()
  for _, op in ipairs { "add", "sub", "mul", "div", "maximum", "minimum", "atan2" } do
    check(op, function(a, b) return torsh[op](a, b) end, { leaf(2, 3), leaf(3) })
    check(op .. " (b needs grad only)", function(a, b) return torsh[op](a, b) end, { torsh.randn(2, 1, "f64"), leaf(1, 4) })
  end
  check("pow", function(a, b) return a ^ b end, { positive(2, 3), leaf(2, 3) })
  check("remainder", function(a, b) return a % b end, { leaf(4), positive(4) })
  check("scalar ops", function(a) return (2 - a) * 3 / (a + 5) ^ 2 end, { leaf(3, 2) })
  check("add alpha", function(a, b) return torsh.add(a, b, 2.5) end, { leaf(3), leaf(3) })
end)

T.case("unary ops", function()
  local domain = { log = positive, sqrt = positive, rsqrt = positive, log2 = positive, log1p = positive,
                   reciprocal = positive }
  for _, op in ipairs { "abs", "neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid",
                        "relu", "gelu", "gelu_tanh", "silu", "erf", "reciprocal", "square", "log1p", "expm1",
                        "log2", "exp2", "atan", "sinh", "cosh" } do
    local make = domain[op] or leaf
    check(op, function(a) return a[op](a) end, { make(3, 4) })
  end
  for _, op in ipairs { "asin", "acos" } do
    check(op, function(a) return a[op](a) end, { (torsh.rand(5):to("f64") * 1.6 - 0.8):requires_grad_() })
  end
  -- piecewise-constant ops have zero gradient
  local x = leaf(5)
  x:floor():sum():backward()
  T.close(x:grad(), { 0, 0, 0, 0, 0 })
  check("leaky_relu", function(a) return a:leaky_relu(0.1) end, { leaf(6) })
  check("clamp", function(a) return a:clamp(-0.5, 0.5) end, { leaf(8) })
  check("where", function(a, b) return torsh.where(a:gt(0), a, b) end, { leaf(3, 3), leaf(3) })
end)

T.case("reductions", function()
  for _, op in ipairs { "sum", "mean", "amax", "amin", "logsumexp" } do
    check(op .. " all", function(a) return a[op](a) end, { leaf(3, 4) })
    check(op .. " dim", function(a) return a[op](a, 2) end, { leaf(3, 4) })
    check(op .. " dims keepdim", function(a) return a[op](a, { 1, 3 }, true) end, { leaf(2, 3, 2) })
  end
  check("prod", function(a) return a:prod(1) end, { positive(3, 2) })
  check("var", function(a) return a:var(2) end, { leaf(3, 5) })
  check("std", function(a) return a:std() end, { leaf(3, 5) })
  check("norm 2", function(a) return a:norm() end, { leaf(4, 3) })
  check("norm 3 dim", function(a) return a:norm(3, 1) end, { positive(4, 3) })
  check("max all", function(a) return a:max() end, { leaf(7) })
end)

T.case("matmul family", function()
  check("mm", torsh.matmul, { leaf(3, 4), leaf(4, 2) })
  check("vec.vec", torsh.matmul, { leaf(4), leaf(4) })
  check("vec.mat", torsh.matmul, { leaf(4), leaf(4, 3) })
  check("mat.vec", torsh.matmul, { leaf(2, 3, 4), leaf(4) })
  check("batched broadcast", torsh.matmul, { leaf(2, 1, 3, 4), leaf(3, 4, 2) })
  check("bmm", torsh.bmm, { leaf(2, 3, 4), leaf(2, 4, 5) })
  check("linear", torsh.linear, { leaf(5, 4), leaf(3, 4), leaf(3) })
  check("transposed operand", function(a, b) return a:t():matmul(b) end, { leaf(4, 3), leaf(4, 2) })
end)

T.case("views and copies", function()
  check("view", function(a) return a:view(6, 2) * torsh.arange(12):view(6, 2):to("f64") end, { leaf(3, 4) })
  check("reshape of transpose", function(a) return a:t():reshape(12) end, { leaf(3, 4) })
  check("permute", function(a) return a:permute(3, 1, 2) * torsh.arange(24):reshape(4, 2, 3):to("f64") end, { leaf(2, 3, 4) })
  check("slice", function(a) return a:slice(2, 1, -1, 2) end, { leaf(3, 5) })
  check("narrow+select", function(a) return a:narrow(1, 2, 2):select(2, -1) end, { leaf(4, 3) })
  check("expand", function(a) return a:expand(4, 3) * torsh.arange(12):reshape(4, 3):to("f64") end, { leaf(1, 3) })
  check("squeeze/unsqueeze/flatten", function(a) return a:unsqueeze(1):squeeze(1):flatten() end, { leaf(2, 3) })
  check("clone/contiguous/to", function(a) return a:t():contiguous():clone():to("f32"):to("f64") * 2 end, { leaf(2, 3) },
        { eps = 1e-2, atol = 1e-3 })   -- f32 in the middle: a coarse step on a linear function
end)

T.case("gradients accumulate, and non-scalar roots take a gradient", function()
  local x = torsh.tensor({ 1.0, 2.0, 3.0 }, "f64"):requires_grad_()
  local s1 = (x * x):sum()
  s1:backward()
  T.close(x:grad(), { 2, 4, 6 })
  local s2 = (x * 3):sum()
  s2:backward()
  T.close(x:grad(), { 5, 7, 9 })
  x:set_grad(nil)
  local y = x * 2
  y:backward(torsh.tensor({ 1.0, 0.0, -1.0 }, "f64"))
  T.close(x:grad(), { 2, 0, -2 })
  T.raises(function() (x * 2):backward() end, "only for one-element outputs")
  T.raises(function() (x * 2):backward(torsh.ones(2, "f64")) end, "gradient of shape [2] given for a tensor of shape [3]")
  -- a value used twice sums both paths
  x:set_grad(nil)
  local z = x:sin()
  local s3 = (z * z + z):sum()
  s3:backward()
  T.close(x:grad(), (x:sin() * 2 + 1) * x:cos(), 1e-12)
end)

T.case("retain_graph, no_grad, detach, leaves", function()
  local x = torsh.tensor({ 1.0, 2.0 }, "f64"):requires_grad_()
  local y = (x:exp()):sum()
  y:backward(nil, { retain_graph = true })
  y:backward()
  T.close(x:grad(), x:exp() * 2, 1e-12)
  T.raises(function() y:backward() end, "a second time")
  T.ok(x:is_leaf() and not y:is_leaf())
  T.eq(y:grad_fn(), "sum")
  local z = torsh.no_grad(function() return x * 2 end)
  T.ok(not z:requires_grad())
  T.ok(not x:detach():requires_grad())
  T.ok(x:detach():shares_storage(x))
  T.ok(torsh.is_grad_enabled())
  T.raises(function() torsh.ones(2, "i64"):requires_grad_() end, "only floating point")
  T.raises(function() y:requires_grad_(false) end, "only leaf tensors")
  T.raises(function() torsh.ones(2):backward() end, "does not require grad")
end)

T.case("in-place changes of graph tensors are refused, allowed under no_grad", function()
  local w = torsh.ones(3):requires_grad_()
  T.raises(function() w:mul_(2) end, "in-place change of a tensor that requires grad")
  T.raises(function() w:fill_(0) end, "in-place")
  torsh.no_grad(function() w:sub_(torsh.ones(3) * 0.5) end)
  T.close(w, { 0.5, 0.5, 0.5 })
  T.ok(w:requires_grad())
end)

T.case("graphs are freed with their results", function()
  collectgarbage()
  local before = torsh.memory().live
  do
    local x = torsh.randn(256, 256):requires_grad_()
    for _ = 1, 20 do
      local l = (x:matmul(x):tanh() * 2):mean()
      l:backward()
    end
    x:set_grad(nil)
  end
  collectgarbage()
  collectgarbage()
  T.ok(torsh.memory().live <= before + 1024, string.format("%d bytes still live", torsh.memory().live - before))
end)

T.finish()
