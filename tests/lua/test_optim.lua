-- test_optim.lua — torsh.optim against PyTorch 1.13 (tests/fixtures/optim_ref.lua,
-- made by gen_optim.py): every optimizer and option combination replayed
-- step by step from fixed parameters and gradients, param groups, missing
-- gradients, f64 parameters; every scheduler's lr sequence; clip_grad_norm_.
-- Also: state_dict round trips continue identically, zero_grad, gradient
-- accumulation through backward(), f16/bf16 and non-contiguous tensors (the
-- staged path), thread-count independence, and bad options.
local torsh = require "torsh"
local T = require "torsh.test"
local optim = require "torsh.optim"
local sched = optim.lr_scheduler
local ref = dofile("tests/fixtures/optim_ref.lua")

local TOL = { f32 = { atol = 1e-6, rtol = 1e-6 }, f64 = { atol = 1e-12, rtol = 1e-12 } }

local function tensor(data, shape, dtype) return torsh.tensor(data, dtype):reshape(shape) end
local function flat(t) return t:detach():reshape(-1) end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local function describe(case)
  local parts = {}
  for k, v in pairs(case.opts) do
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ",") .. "}" or tostring(v))
  end
  table.sort(parts)
  local s = case.optimizer .. "{" .. table.concat(parts, ", ") .. "} " .. case.dtype
  if case.groups then s = s .. " (param groups)" end
  for _, row in ipairs(case.grads) do
    for _, g in ipairs(row) do if g == false then return s .. " (missing grads)" end end
  end
  return s
end

-- Fresh params from the fixture and the optimizer over them.
local function build(case)
  local params = {}
  for i, shape in ipairs(case.shapes) do params[i] = tensor(case.params[i], shape, case.dtype):requires_grad_() end
  local arg = params
  if case.groups then
    arg = {}
    for gi, g in ipairs(case.groups) do
      local ng = copy(g)
      ng.params = {}
      for j, idx in ipairs(g.params) do ng.params[j] = params[idx] end
      arg[gi] = ng
    end
  end
  return params, optim[case.optimizer](arg, copy(case.opts))
end

local function set_grads(case, params, step)
  for i, p in ipairs(params) do
    local g = case.grads[step][i]
    p:set_grad(g and tensor(g, case.shapes[i], case.dtype) or nil)
  end
end

-- Steps from..to with the fixture's gradients, checking every parameter.
local function replay(case, params, opt, from, to)
  for step = from, to do
    set_grads(case, params, step)
    opt:step()
    for i, p in ipairs(params) do
      T.close(flat(p), case.expected[step][i], TOL[case.dtype], string.format("step %d, param %d", step, i))
    end
  end
end

-- ---- optimizers against PyTorch -------------------------------------------------------------

for _, case in ipairs(ref.optimizers) do
  T.case("matches torch: " .. describe(case), function()
    local params, opt = build(case)
    replay(case, params, opt, 1, #case.expected)
  end)
end

T.case("state_dict round trip continues identically", function()
  local seen = {}
  for _, case in ipairs(ref.optimizers) do
    local key = case.optimizer .. case.dtype .. (case.groups and "g" or "")
    if not seen[key] then
      seen[key] = true
      local params, opt = build(case)
      replay(case, params, opt, 1, 2)
      local sd = opt:state_dict()
      T.eq(#sd.param_groups, case.groups and #case.groups or 1)
      T.ok(sd.state[0] ~= nil, "state numbered from 0")
      -- a second optimizer over equal parameters, restored from the state dict
      local params2, opt2 = build(case)
      for i, p in ipairs(params2) do torsh.no_grad(function() p:copy_(params[i]) end) end
      opt2:load_state_dict(sd)
      -- the loaded state is a copy: changing the saved tensors changes nothing
      for _, st in pairs(sd.state) do
        for _, v in pairs(st) do if torsh.is_tensor(v) then v:fill_(1e6) end end
      end
      replay(case, params2, opt2, 3, #case.expected)
    end
  end
end)

T.case("state_dict has PyTorch's layout", function()
  local a = torsh.zeros(2):requires_grad_()
  local b = torsh.zeros(3):requires_grad_()
  local c = torsh.zeros(1):requires_grad_()
  local opt = optim.Adam({ { params = { a, b } }, { params = { c }, lr = 0.5 } }, { lr = 0.1, amsgrad = true })
  a:set_grad(torsh.ones(2)); c:set_grad(torsh.ones(1))
  opt:step()
  local sd = opt:state_dict()
  T.eq(sd.param_groups[1].params[1], 0); T.eq(sd.param_groups[1].params[2], 1); T.eq(sd.param_groups[2].params[1], 2)
  T.eq(sd.param_groups[1].lr, 0.1); T.eq(sd.param_groups[2].lr, 0.5)
  T.eq(sd.param_groups[1].betas[2], 0.999); T.eq(sd.param_groups[1].amsgrad, true)
  T.eq(sd.state[0].step, 1); T.eq(sd.state[1], nil); T.eq(sd.state[2].step, 1)
  T.ok(torsh.is_tensor(sd.state[0].exp_avg) and torsh.is_tensor(sd.state[0].exp_avg_sq) and torsh.is_tensor(sd.state[0].max_exp_avg_sq))
  T.eq(sd.state[0].exp_avg:dtype(), "f32")
  T.close(sd.state[2].exp_avg, { 0.1 })
  -- the state dict keeps its own group tables: changing the optimizer's lr later does not touch it
  opt.param_groups[1].lr = 7
  T.eq(sd.param_groups[1].lr, 0.1)
  -- f64 state loaded into an f32 optimizer is cast to the parameter's dtype
  sd.state[0].exp_avg = sd.state[0].exp_avg:to("f64")
  local opt2 = optim.Adam({ { params = { a, b } }, { params = { c }, lr = 0.5 } }, { lr = 0.1, amsgrad = true })
  opt2:load_state_dict(sd)
  T.eq(opt2.state[a].exp_avg:dtype(), "f32")
  T.eq(opt2.param_groups[2].lr, 0.5)
  T.ok(opt2.param_groups[1].params[1] == a, "params come from the optimizer, not the state dict")
end)

-- ---- zero_grad, accumulation ---------------------------------------------------------------------

T.case("zero_grad", function()
  local p = torsh.ones(3):requires_grad_()
  local opt = optim.SGD({ p }, { lr = 0.1 })
  local g = torsh.tensor({ 1, 2, 3 }, "f32")
  p:set_grad(g)
  opt:zero_grad({ set_to_none = false })
  T.close(p:grad(), { 0, 0, 0 })
  T.close(g, { 0, 0, 0 }, nil, "zeroed in place")
  opt:zero_grad()
  T.eq(p:grad(), nil)
  opt:step()                                       -- no gradient: nothing changes
  T.close(p, { 1, 1, 1 })
  p:set_grad(torsh.ones(3))
  opt:zero_grad(true)
  T.eq(p:grad(), nil)
end)

T.case("gradient accumulation: several backward() calls, one step", function()
  local x = torsh.tensor({ { 1, 2 }, { 3, 4 } }, "f32")
  local w1 = torsh.tensor({ 0.5, -0.25 }):requires_grad_()
  local w2 = torsh.tensor({ 0.5, -0.25 }):requires_grad_()
  local o1 = optim.SGD({ w1 }, { lr = 0.1, momentum = 0.9 })
  local o2 = optim.SGD({ w2 }, { lr = 0.1, momentum = 0.9 })
  for _ = 1, 3 do
    o1:zero_grad(); o2:zero_grad()
    for _ = 1, 2 do ((x:matmul(w1)) ^ 2):sum():backward() end   -- accumulated twice
    ((x:matmul(w2)) ^ 2):sum():mul(2):backward()               -- the same gradient at once
    T.close(w1:grad(), w2:grad(), 1e-6)
    o1:step(); o2:step()
    T.close(w1, w2, 1e-6)
  end
  -- the step really moved the weights along -grad
  T.ok(math.abs(w1:get(1) - 0.5) > 1e-3)
end)

T.case("step(closure) returns the loss", function()
  local w = torsh.tensor({ 1.5, -1 }):requires_grad_()
  local opt = optim.SGD({ w }, { lr = 0.5 })
  local loss = opt:step(function()
    opt:zero_grad()
    local l = (w * w):sum()
    l:backward()
    return l
  end)
  T.close(loss, 3.25)
  T.close(w, { 0, 0 })
end)

-- ---- dtypes and layouts (the staged path) ---------------------------------------------------------

local function adam_run(p, grads, opts)
  local opt = optim.Adam({ p }, opts)
  for _, g in ipairs(grads) do p:set_grad(g); opt:step() end
  return opt
end

T.case("f16 and bf16 parameters step through f32", function()
  torsh.manual_seed(11)
  local p0 = torsh.randn(4, 5)
  local grads = {}
  for i = 1, 3 do grads[i] = torsh.randn(4, 5) end
  local want = p0:clone():requires_grad_()
  adam_run(want, grads, { lr = 0.01, weight_decay = 0.1 })
  for _, dt in ipairs { "f16", "bf16" } do
    local p = p0:to(dt):requires_grad_()
    local hg = {}
    for i, g in ipairs(grads) do hg[i] = g:to(dt) end
    local opt = adam_run(p, hg, { lr = 0.01, weight_decay = 0.1 })
    T.eq(p:dtype(), dt)
    T.eq(opt.state[p].exp_avg:dtype(), dt)
    T.close(p:to("f32"), want, { atol = 2e-2, rtol = 1e-2 }, dt)
  end
end)

T.case("non-contiguous parameters and gradients", function()
  torsh.manual_seed(12)
  local p0 = torsh.randn(3, 4)
  local g1, g2 = torsh.randn(3, 4), torsh.randn(3, 4)
  local want = p0:clone():requires_grad_()
  adam_run(want, { g1, g2 }, { lr = 0.05, amsgrad = true })
  -- a transposed view as the parameter, transposed views as gradients
  local base = p0:t():contiguous()               -- [4, 3]; base:t() is a [3, 4] view
  local p = base:t():requires_grad_()
  T.ok(not p:is_contiguous())
  adam_run(p, { g1:t():contiguous():t(), g2:t():contiguous():t() }, { lr = 0.05, amsgrad = true })
  T.close(p, want, 1e-7)
  T.close(base:t(), want, 1e-7, "written through to the viewed storage")
  -- a gradient of another floating dtype
  local q = p0:clone():requires_grad_()
  adam_run(q, { g1:to("f64"), g2:to("f64") }, { lr = 0.05, amsgrad = true })
  T.close(q, want, 1e-7)
end)

T.case("results do not depend on the thread count", function()
  torsh.manual_seed(13)
  local n = 300000
  local p0, g = torsh.randn(n), torsh.randn(n)
  local small = torsh.randn(7)
  local function run(threads)
    local prev = torsh.get_num_threads()
    torsh.set_num_threads(threads)
    local p, q = p0:clone():requires_grad_(), small:clone():requires_grad_()
    local opt = optim.RMSprop({ p, q }, { lr = 0.01, momentum = 0.9, centered = true })
    for _ = 1, 2 do p:set_grad(g); q:set_grad(small); opt:step() end
    local pc = p:clone()
    pc:set_grad(g:clone())
    local total = optim.clip_grad_norm_({ pc }, 1.0)
    torsh.set_num_threads(prev)
    return p, total
  end
  local a, ta = run(1)
  local b, tb = run(4)
  T.eq((a - b):abs():max():item(), 0)
  T.eq(ta, tb)
end)

T.case("a large fused step matches the per-element formula", function()
  torsh.manual_seed(14)
  local p = torsh.randn(100000):requires_grad_()
  local p2 = p:detach():clone()
  local g = torsh.randn(100000)
  local opt = optim.SGD({ p }, { lr = 0.1, momentum = 0.9, weight_decay = 0.01 })
  p:set_grad(g)
  opt:step()
  local d = g + p2 * 0.01
  T.close(p, p2 - d * 0.1, 1e-6)
end)

-- ---- schedulers against PyTorch --------------------------------------------------------------------

local function sched_optimizer(kind)
  local a = torsh.zeros(2):requires_grad_()
  local b = torsh.zeros(3):requires_grad_()
  if kind == "Adam" then return optim.Adam({ { params = { a } }, { params = { b }, lr = 0.05 } }, { lr = 0.1 }) end
  return optim.SGD({ { params = { a } }, { params = { b }, lr = 0.05 } }, { lr = 0.1, momentum = 0.9 })
end

local function build_sched(spec, opt)
  local o = copy(spec.opts or {})
  if spec.name == "LambdaLR" then o.lr_lambda = function(e) return 0.95 ^ e end end
  if spec.children then
    local kids = {}
    for i, c in ipairs(spec.children) do kids[i] = build_sched(c, opt) end
    if spec.name == "ChainedScheduler" then return sched.ChainedScheduler(kids) end
    o.schedulers = kids
  end
  return sched[spec.name](opt, o)
end

local function sched_step(spec, s, i)
  if spec.name == "ReduceLROnPlateau" then s:step(ref.plateau_metrics[i])
  elseif spec.epochs then s:step(ref.cawr_epochs[i])
  else s:step() end
end

local function check_lrs(spec, opt, s, i)
  local msg = string.format("%s after %d steps", spec.name, i - 1)
  T.close(s:get_last_lr(), spec.lrs[i], 1e-12, msg)
  local lrs = {}
  for gi, g in ipairs(opt.param_groups) do lrs[gi] = g.lr end
  T.close(lrs, spec.lrs[i], 1e-12, msg)
  if spec.momentum then
    local m = {}
    for gi, g in ipairs(opt.param_groups) do m[gi] = g.betas and g.betas[1] or g.momentum end
    T.close(m, spec.momentum[i], 1e-12, msg .. " (momentum)")
  end
end

local function sched_label(spec)
  local parts = {}
  for k, v in pairs(spec.opts or {}) do parts[#parts + 1] = k .. "=" .. (type(v) == "table" and "{..}" or tostring(v)) end
  table.sort(parts)
  return spec.name .. "{" .. table.concat(parts, ", ") .. "}" .. (spec.epochs and " with epochs" or "")
    .. (spec.optimizer and " on " .. spec.optimizer or "")
end

for _, spec in ipairs(ref.schedulers) do
  T.case("matches torch: " .. sched_label(spec), function()
    local opt = sched_optimizer(spec.optimizer)
    local s = build_sched(spec, opt)
    check_lrs(spec, opt, s, 1)
    for i = 1, #spec.lrs - 1 do
      opt:step()
      sched_step(spec, s, i)
      check_lrs(spec, opt, s, i + 1)
    end
  end)

  T.case("state_dict round trip: " .. sched_label(spec), function()
    local opt = sched_optimizer(spec.optimizer)
    local s = build_sched(spec, opt)
    local cut = 12
    for i = 1, cut do sched_step(spec, s, i) end
    local sd, osd = s:state_dict(), opt:state_dict()
    for _, v in pairs(sd) do T.ok(type(v) ~= "function", "state_dict holds plain values") end
    local opt2 = sched_optimizer(spec.optimizer)
    local s2 = build_sched(spec, opt2)
    opt2:load_state_dict(osd)
    s2:load_state_dict(sd)
    for i = cut + 1, #spec.lrs - 1 do
      sched_step(spec, s2, i)
      check_lrs(spec, opt2, s2, i + 1)
    end
  end)
end

T.case("schedulers take positional arguments too", function()
  local opt = sched_optimizer()
  local s = sched.StepLR(opt, 2, 0.5)
  s:step(); s:step()
  T.close(s:get_last_lr(), { 0.05, 0.025 })
  local opt2 = sched_optimizer()
  local m = sched.MultiStepLR(opt2, { 1, 3 }, { gamma = 0.1 })
  m:step()
  T.close(m:get_last_lr(), { 0.01, 0.005 })
  -- step(epoch) uses the closed form
  m:step(3)
  T.close(m:get_last_lr(), { 0.001, 0.0005 }, 1e-12)
end)

-- ---- clipping --------------------------------------------------------------------------------------

for ci, case in ipairs(ref.clip) do
  T.case(string.format("clip_grad_norm_ matches torch (%s, norm %s, max %s)", case.dtype, tostring(case.norm_type), tostring(case.max_norm)), function()
    local params = {}
    for i, shape in ipairs(case.shapes) do
      params[i] = torsh.zeros(shape, case.dtype):requires_grad_()
      params[i]:set_grad(tensor(case.grads[i], shape, case.dtype))
    end
    local norm = case.norm_type == math.huge and (ci % 2 == 0 and "inf" or math.huge) or case.norm_type
    local total = optim.clip_grad_norm_(params, case.max_norm, norm)
    T.close(total, case.total, TOL[case.dtype])
    for i, p in ipairs(params) do T.close(flat(p:grad()), case.clipped[i], TOL[case.dtype], "grad " .. i) end
  end)
end

T.case("clip_grad_norm_: edge cases", function()
  local p = torsh.zeros(3):requires_grad_()
  T.eq(optim.clip_grad_norm_({ p }, 1.0), 0.0, "no gradients: norm 0")
  p:set_grad(torsh.tensor({ 3, 4, 0 }, "f32"))
  T.close(optim.clip_grad_norm_(p, 10), 5)                  -- a single tensor is accepted
  T.close(p:grad(), { 3, 4, 0 })
  p:set_grad(torsh.tensor({ 0 / 0, 1, 0 }))
  T.raises(function() optim.clip_grad_norm_({ p }, 1.0, 2, true) end, "non-finite")
  T.raises(function() optim.clip_grad_norm_({ p }, 1.0, 2, { error_if_nonfinite = true }) end, "non-finite")
  T.raises(function() optim.clip_grad_norm_({ p }, 1.0, 0) end, "norm_type must be > 0")
  T.raises(function() optim.clip_grad_norm_({ p }, 1.0, "fro") end, "norm_type")
  T.raises(function() optim.clip_grad_norm_({ p }, "x") end, "max_norm must be a number")
end)

T.case("clip_grad_value_", function()
  local a = torsh.zeros(4):requires_grad_()
  local b = torsh.zeros(2, "f64"):requires_grad_()
  a:set_grad(torsh.tensor({ -2.0, -0.5, 0.25, 3 }))
  b:set_grad(torsh.tensor({ 0.9, -1.5 }, "f64"))
  optim.clip_grad_value_({ a, b }, 1.0)
  T.close(a:grad(), { -1, -0.5, 0.25, 1 })
  T.close(b:grad(), { 0.9, -1 })
  T.raises(function() optim.clip_grad_value_({ a }, -1) end, "clip_value must be >= 0")
end)

-- ---- bad input -------------------------------------------------------------------------------------

T.case("bad optimizer options give clear errors", function()
  local p = torsh.zeros(2):requires_grad_()
  T.raises(function() optim.Adam({ p }, { lr = -1 }) end, "Adam: invalid learning rate: -1")
  T.raises(function() optim.Adam({ p }, { betas = { 0.9, 1.5 } }) end, "betas[2] = 1.5")
  T.raises(function() optim.AdamW({ p }, { betas = { -0.1, 0.9 } }) end, "betas[1] = -0.1")
  T.raises(function() optim.Adam({ p }, { betas = 0.9 }) end, "betas must be a table")
  T.raises(function() optim.Adam({ p }, { eps = -1 }) end, "invalid epsilon value")
  T.raises(function() optim.Adam({ p }, { lrr = 0.1 }) end, "unknown option 'lrr'")
  T.raises(function() optim.Adam({ p }, { lr = "fast" }) end, "lr must be a number")
  T.raises(function() optim.SGD({ p }) end, "required optimization parameter lr")
  T.raises(function() optim.SGD({ p }, { lr = 0.1, nesterov = true }) end, "nesterov momentum requires")
  T.raises(function() optim.SGD({ p }, { lr = 0.1, momentum = -0.5 }) end, "invalid momentum value")
  T.raises(function() optim.RMSprop({ p }, { alpha = -1 }) end, "invalid alpha value")
  T.raises(function() optim.Adagrad({ p }, { lr_decay = -1 }) end, "invalid lr_decay value")
  T.raises(function() optim.Adagrad({ p }, { initial_accumulator_value = -1 }) end, "initial_accumulator_value")
  T.raises(function() optim.Adam({}, {}) end, "empty parameter list")
  T.raises(function() optim.Adam(p) end, "got a Tensor")
  T.raises(function() optim.Adam({ torsh.zeros(2, "i64") }) end, "floating")
  T.raises(function() optim.Adam({ p * 2 }) end, "non-leaf")
  T.raises(function() optim.Adam({ { params = { p } }, { params = { p } } }) end, "more than one parameter group")
  T.raises(function() optim.Adam({ p, p }) end, "params[2] is params[1] again")
  T.raises(function() optim.Adam({ { params = { p }, lr = -3 } }) end, "invalid learning rate")
  -- the error points at the caller's line, not inside torsh.optim
  local err = T.raises(function() optim.Adam({ p }, { lr = -1 }) end)
  T.ok(err:find("test_optim.lua", 1, true), err)
end)

T.case("bad state dicts and gradients", function()
  local p, q = torsh.zeros(2):requires_grad_(), torsh.zeros(3):requires_grad_()
  local opt = optim.Adam({ p, q })
  p:set_grad(torsh.ones(2)); q:set_grad(torsh.ones(3))
  opt:step()
  local sd = opt:state_dict()
  T.raises(function() optim.Adam({ p }):load_state_dict(sd) end, "has 2 params")
  T.raises(function() optim.Adam({ { params = { p } }, { params = { q } } }):load_state_dict(sd) end, "parameter groups")
  T.raises(function() optim.Adam({ q, p }):load_state_dict(sd) end, "but the param has shape")
  T.raises(function() opt:load_state_dict({}) end, "expects a table with 'state' and 'param_groups'")
  p:set_grad(torsh.ones(2, "i64"))
  T.raises(function() opt:step() end, "gradients are floating")
end)

T.case("torsh._optim (the C steps) checks its arguments", function()
  local C = torsh._optim
  local p, g = torsh.zeros(3), torsh.ones(3)
  local z = function(dt) return torsh.zeros(3, dt) end
  T.raises(function() C.adam_step({ p }, { g, g }, { z() }, { z() }, nil, 1, {}) end, "grads has 2 tensors but params has 1")
  T.raises(function() C.adam_step({ p }, { g }, { torsh.zeros(2) }, { z() }, nil, 1, {}) end,
    "exp_avg[0] has shape [2] but params[0] has shape [3]")
  T.raises(function() C.adam_step({ p }, { g }, { z("f64") }, { z() }, nil, 1, {}) end, "exp_avg[0] has dtype f64")
  T.raises(function() C.adam_step({ p }, { g }, { z() }, { z() }, nil, 0, {}) end, "step must be >= 1")
  T.raises(function() C.adam_step({ p }, { g }, { z() }, { z() }, nil, 1, { amsgrad = true }) end, "max_exp_avg_sq")
  T.raises(function() C.adam_step({ p }, { g }, { z() }, { z() }, nil, 1, { beta2 = 1 }) end, "invalid beta2 1")
  T.raises(function() C.sgd_step({ p }, { torsh.ones(4) }, nil, { lr = 0.1 }) end, "grads[0] has shape [4]")
  T.raises(function() C.sgd_step({ p }, { g }, nil, { lr = 0.1, momentum = 0.9 }) end, "needs momentum buffers")
  T.raises(function() C.sgd_step({ z("i32") }, { g }, nil, { lr = 0.1 }) end, "only floating tensors can be optimized")
  T.raises(function() C.rmsprop_step({ p }, { g }, { z() }, nil, nil, { lr = -1 }) end, "invalid learning rate")
  T.raises(function() C.adagrad_step({ p }, { g }, { 1 }, 1, {}) end, "sum[1] is a number, not a Tensor")
  T.raises(function() C.clip_grad_norm({ g }, 1.0, 0 / 0) end, "norm_type must be > 0")
  -- nothing was written by the failed calls
  T.close(p, { 0, 0, 0 })
  -- an empty list is a no-op
  C.adam_step({}, {}, {}, {}, nil, 1, {})
  T.eq(C.clip_grad_norm({}, 1.0), 0)
end)

T.case("bad scheduler options give clear errors", function()
  local opt = sched_optimizer()
  T.raises(function() sched.StepLR(opt, {}) end, "step_size is required")
  T.raises(function() sched.StepLR(opt, { step_size = 2, gama = 0.5 }) end, "unknown option 'gama'")
  T.raises(function() sched.StepLR(opt, 0) end, "step_size must be >= 1")
  T.raises(function() sched.LinearLR(opt, { start_factor = 2 }) end, "starting multiplicative factor")
  T.raises(function() sched.ReduceLROnPlateau(opt, { factor = 1.5 }) end, "factor should be < 1.0")
  T.raises(function() sched.ReduceLROnPlateau(opt, { mode = "up" }) end, "mode up is unknown")
  T.raises(function() sched.CosineAnnealingWarmRestarts(opt, { T_0 = 0 }) end, "T_0 must be >= 1")
  T.raises(function() sched.OneCycleLR(opt, { max_lr = 0.1 }) end, "total_steps")
  T.raises(function() sched.StepLR({}, 3) end, "is not an Optimizer")
  T.raises(function() sched.OneCycleLR(optim.Adagrad({ torsh.zeros(1):requires_grad_() }), { max_lr = 1, total_steps = 3 }) end,
    "must support momentum")
  local s = sched.OneCycleLR(sched_optimizer(), { max_lr = 1.0, total_steps = 3 })
  for _ = 1, 3 do s:step() end
  T.raises(function() s:step() end, "tried to step 5 times")
  local plateau = sched.ReduceLROnPlateau(sched_optimizer())
  T.raises(function() plateau:step("low") end, "expects a metric")
  plateau:step(torsh.tensor(0.5))
  T.eq(plateau.best, 0.5)
end)

T.case("torsh.optim is the module", function()
  T.eq(torsh.optim, optim)
  T.eq(require("torsh.optim.lr_scheduler"), sched)
  T.ok(tostring(optim.SGD({ torsh.zeros(1):requires_grad_() }, { lr = 0.1 })):find("SGD (", 1, true))
end)

T.finish()
