-- torsh/optim.lua — optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), gradient
-- clipping, and the learning-rate schedulers (torsh.optim.lr_scheduler), with
-- PyTorch 1.13's options, update formulas and state_dict layout.
--
--   local optim = require "torsh.optim"          -- also torsh.optim afterwards
--   local opt = optim.Adam(model:parameters(), { lr = 1e-3, betas = { 0.9, 0.999 } })
--   for x, y in batches do
--     opt:zero_grad()
--     loss_fn(model(x), y):backward()
--     optim.clip_grad_norm_(model:parameters(), 1.0)
--     opt:step()
--   end
--
-- The objects live here (param groups, per-parameter state, state_dict); the
-- arithmetic is one fused C call per param group and step (torsh._optim,
-- core/optim/optim.c) that updates every parameter in place.
--
-- params: a list of tensors, or a list of param groups
-- { {params = {...}, lr = ...}, ... } whose keys override the defaults.
-- State tensors have their parameter's dtype and shape. state_dict() gives
-- { state = { [0] = {step=, exp_avg=, ...}, ... }, param_groups = { {lr=, ..., params = {0, 1, ...}} } }
-- with 0-based parameter numbers as in PyTorch; state tensors are shared, not copied
-- (load_state_dict copies them). A param whose gradient is nil is skipped, so
-- gradient accumulation is just several backward() calls before step().
local torsh = require "torsh"
local C = torsh._optim

local optim = {}

-- ---- helpers -------------------------------------------------------------------------------

-- Raises msg at the first caller outside torsh/optim*.lua (the user's line).
local function fail(fmt, ...)
  local msg = string.format(fmt, ...)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then level = 1 break end
    if info.what ~= "C" and not info.source:find("torsh/optim", 1, true) then break end
    level = level + 1
  end
  error(msg, level)
end

-- Deep copy of plain tables; tensors, objects and other values are shared.
local function copy(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  return ks
end

local function is_list_of_tensors(t)
  return type(t) == "table" and torsh.is_tensor(t[1])
end

local function fmt_value(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return "(" .. table.concat(parts, ", ") .. ")"
  end
  return tostring(v)
end

-- ---- Optimizer: the base class ----------------------------------------------------------------

local Optimizer = {}
Optimizer.__index = Optimizer
optim.Optimizer = Optimizer

local REQUIRED = setmetatable({}, { __tostring = function() return "<required parameter>" end })
optim.required = REQUIRED

--- optim.class(name, defaults, spec) -> a new optimizer class. defaults: the
--- hyperparameters and their default values (optim.required when none);
--- spec.validate(self, group) checks a group; spec.step_group(self, group)
--- updates its params; spec.init_group(self, group) runs when a group is added;
--- spec.ignored lists options accepted and ignored (PyTorch's foreach...).
function optim.class(name, defaults, spec)
  local cls = setmetatable({ __name = name, _defaults = defaults, _spec = spec }, {
    __index = Optimizer,
    __call = function(c, params, opts) return c.new(params, opts) end,
  })
  cls.__index = cls
  cls.__tostring = Optimizer.__tostring
  function cls.new(params, opts)
    local self = setmetatable({}, cls)
    self:_init(params, opts)
    return self
  end
  return cls
end

function Optimizer:_init(params, opts)
  local cls = getmetatable(self)
  if opts ~= nil and type(opts) ~= "table" then fail("%s: options must be a table, got %s", cls.__name, type(opts)) end
  opts = opts or {}
  local ignored = cls._spec.ignored or {}
  local defaults = {}
  for k, v in pairs(cls._defaults) do defaults[k] = copy(v) end
  for k, v in pairs(opts) do
    if cls._defaults[k] == nil and not ignored[k] then
      fail("%s: unknown option '%s' (known: %s)", cls.__name, tostring(k), table.concat(sorted_keys(cls._defaults), ", "))
    end
    if cls._defaults[k] ~= nil then defaults[k] = copy(v) end
  end
  self.defaults = defaults
  self.state = {}
  self.param_groups = {}
  if torsh.is_tensor(params) then
    fail("%s: params should be a list of tensors or of param groups, but got a Tensor (wrap it in a table)", cls.__name)
  end
  if type(params) ~= "table" then fail("%s: params should be a list of tensors or of param groups, got %s", cls.__name, type(params)) end
  if #params == 0 then fail("%s: optimizer got an empty parameter list", cls.__name) end
  if torsh.is_tensor(params[1]) then params = { { params = params } } end
  for _, group in ipairs(params) do self:add_param_group(group) end
end

--- opt:add_param_group(group): adds {params = {...}, <option> = value...}.
function Optimizer:add_param_group(group)
  local cls = getmetatable(self)
  local name = cls.__name
  if type(group) ~= "table" or torsh.is_tensor(group) then fail("%s: a param group must be a table, got %s", name, type(group)) end
  local params = group.params
  if torsh.is_tensor(params) then params = { params } end
  if type(params) ~= "table" then fail("%s: param group has no 'params' list", name) end
  local g = {}
  for k, v in pairs(group) do if k ~= "params" then g[k] = copy(v) end end
  g.params = {}
  local seen = {}
  for _, other in ipairs(self.param_groups) do for _, p in ipairs(other.params) do seen[p] = true end end
  for i, p in ipairs(params) do
    if not torsh.is_tensor(p) then fail("%s: can only optimize Tensors, but params[%d] is a %s", name, i, type(p)) end
    local dt = p:dtype()
    if dt ~= "f32" and dt ~= "f64" and dt ~= "f16" and dt ~= "bf16" then
      fail("%s: can only optimize floating tensors, but params[%d] has dtype %s", name, i, dt)
    end
    if not p:is_leaf() then fail("%s: can't optimize a non-leaf Tensor (params[%d])", name, i) end
    if seen[p] == true then fail("%s: some parameters appear in more than one parameter group", name) end
    if seen[p] then fail("%s: params[%d] is params[%d] again; a parameter may appear only once", name, i, seen[p]) end
    seen[p] = i
    g.params[i] = p
  end
  for k, v in pairs(self.defaults) do
    if g[k] == nil then
      if v == REQUIRED then fail("%s: parameter group didn't specify a value of required optimization parameter %s", name, k) end
      g[k] = copy(v)
    end
  end
  if cls._spec.validate then cls._spec.validate(self, g) end
  self.param_groups[#self.param_groups + 1] = g
  if cls._spec.init_group then cls._spec.init_group(self, g) end
end

--- opt:step([closure]) -> loss: one update of every param that has a gradient.
--- closure (optional) re-evaluates the model and returns the loss; it runs
--- with grad mode on.
function Optimizer:step(closure)
  local loss
  if closure then loss = torsh.enable_grad(closure) end
  local spec = getmetatable(self)._spec
  for _, group in ipairs(self.param_groups) do spec.step_group(self, group) end
  return loss
end

--- opt:zero_grad([{set_to_none = true}]): clears the gradients (set_to_none,
--- the default, drops them; false zeroes them in place).
function Optimizer:zero_grad(opts)
  local set_to_none = true
  if type(opts) == "boolean" then set_to_none = opts
  elseif type(opts) == "table" and opts.set_to_none ~= nil then set_to_none = opts.set_to_none end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      if set_to_none then p:set_grad(nil)
      else
        local g = p:grad()
        if g then g:zero_() end
      end
    end
  end
end

--- opt:state_dict() -> {state = {[0] = {...}, ...}, param_groups = {...}}
--- (PyTorch's layout; parameters are numbered from 0 across the groups).
function Optimizer:state_dict()
  local index, start = {}, 0
  local groups = {}
  for gi, group in ipairs(self.param_groups) do
    local packed = {}
    for k, v in pairs(group) do if k ~= "params" then packed[k] = copy(v) end end
    local ids = {}
    for i, p in ipairs(group.params) do
      if index[p] == nil then index[p] = start + i - 1 end
      ids[i] = index[p]
    end
    start = start + #group.params
    packed.params = ids
    groups[gi] = packed
  end
  local state = {}
  for p, st in pairs(self.state) do
    if index[p] ~= nil then state[index[p]] = copy(st) end
  end
  return { state = state, param_groups = groups }
end

local function shape_str(s) return "[" .. table.concat(s, ", ") .. "]" end

-- A copy of a saved state value for param p: tensors cast to p's dtype.
local function cast_state(name, idx, p, key, v)
  if torsh.is_tensor(v) then
    if key == "step" then v = v:item(); return math.tointeger(v) or v end
    local ps, vs = p:shape(), v:shape()
    if shape_str(ps) ~= shape_str(vs) then
      fail("%s: load_state_dict: state '%s' of param %d has shape %s but the param has shape %s",
        name, key, idx, shape_str(vs), shape_str(ps))
    end
    local c = v:to(p:dtype())
    if c:shares_storage(v) then c = c:clone() end
    return c:contiguous()
  end
  if key == "step" and type(v) == "number" then return math.tointeger(v) or v end
  return copy(v)
end

--- opt:load_state_dict(sd): restores the state and the hyperparameters from
--- a state_dict() of an optimizer over the same parameter layout.
function Optimizer:load_state_dict(sd)
  local name = getmetatable(self).__name
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    fail("%s: load_state_dict expects a table with 'state' and 'param_groups'", name)
  end
  local saved = sd.param_groups
  if #saved ~= #self.param_groups then
    fail("%s: loaded state dict has %d parameter groups, the optimizer has %d", name, #saved, #self.param_groups)
  end
  local id_map = {}
  for gi, group in ipairs(self.param_groups) do
    local sg = saved[gi]
    if type(sg.params) ~= "table" or #sg.params ~= #group.params then
      fail("%s: loaded state dict's group %d has %d params, the optimizer's group has %d", name, gi,
        type(sg.params) == "table" and #sg.params or 0, #group.params)
    end
    for i, id in ipairs(sg.params) do id_map[id] = group.params[i] end
  end
  local state = {}
  for id, st in pairs(sd.state) do
    local p = id_map[id]
    if p ~= nil then
      local s = {}
      for k, v in pairs(st) do s[k] = cast_state(name, id, p, k, v) end
      state[p] = s
    end
  end
  local groups = {}
  for gi, group in ipairs(self.param_groups) do
    local g = {}
    for k, v in pairs(saved[gi]) do if k ~= "params" then g[k] = copy(v) end end
    g.params = group.params
    groups[gi] = g
  end
  self.state = state
  self.param_groups = groups
end

function Optimizer:__tostring()
  local cls = getmetatable(self)
  local lines = { cls.__name .. " (" }
  for gi, group in ipairs(self.param_groups) do
    lines[#lines + 1] = "Parameter Group " .. (gi - 1)
    for _, k in ipairs(sorted_keys(group)) do
      if k ~= "params" then lines[#lines + 1] = "    " .. tostring(k) .. ": " .. fmt_value(group[k]) end
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- ---- option checks ------------------------------------------------------------------------------

local function need_number(name, group, key)
  local v = group[key]
  if type(v) ~= "number" then fail("%s: %s must be a number, got %s", name, key, type(v)) end
  if v ~= v then fail("%s: %s is NaN", name, key) end
  return v
end

local function check_nonneg(name, group, key, what)
  local v = need_number(name, group, key)
  if v < 0 then fail("%s: invalid %s: %s (must be >= 0)", name, what or key, tostring(v)) end
end

local function check_betas(name, group)
  local b = group.betas
  if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number" then
    fail("%s: betas must be a table of two numbers, like {0.9, 0.999}", name)
  end
  for i = 1, 2 do
    if not (b[i] >= 0 and b[i] < 1) then
      fail("%s: invalid beta parameter betas[%d] = %s (must be in [0, 1))", name, i, tostring(b[i]))
    end
  end
end

local IGNORED = { foreach = true, capturable = true, differentiable = true, fused = true }

-- ---- per-step lists -------------------------------------------------------------------------------

-- Buckets params by the step number they reach, so each fused call has one step.
local function bucket(buckets, step)
  local b = buckets[step]
  if not b then
    b = { p = {}, g = {}, s1 = {}, s2 = {}, s3 = {}, st = {} }
    buckets[step] = b
  end
  return b
end

local function steps_in_order(buckets)
  local ks = {}
  for k in pairs(buckets) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- ---- SGD ------------------------------------------------------------------------------------------------

--- optim.SGD(params, {lr, momentum=0, dampening=0, weight_decay=0, nesterov=false, maximize=false})
optim.SGD = optim.class("SGD",
  { lr = REQUIRED, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false, maximize = false,
    differentiable = false },
  {
    ignored = IGNORED,
    validate = function(_, g)
      check_nonneg("SGD", g, "lr", "learning rate")
      check_nonneg("SGD", g, "momentum", "momentum value")
      check_nonneg("SGD", g, "weight_decay", "weight_decay value")
      need_number("SGD", g, "dampening")
      if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
        fail("SGD: nesterov momentum requires a momentum and zero dampening")
      end
    end,
    step_group = function(self, group)
      local mom = group.momentum
      local old, fresh = bucket({}, 0), bucket({}, 0)
      for _, p in ipairs(group.params) do
        local g = p:grad()
        if g then
          local st = self.state[p]
          if not st then st = {}; self.state[p] = st end
          local b = old
          if mom ~= 0 and st.momentum_buffer == nil then b = fresh end
          local n = #b.p + 1
          b.p[n], b.g[n], b.st[n] = p, g, st
          if mom ~= 0 then b.s1[n] = st.momentum_buffer or torsh.zeros_like(p) end
        end
      end
      local opts = { lr = group.lr, momentum = mom, dampening = group.dampening, weight_decay = group.weight_decay,
                     nesterov = group.nesterov, maximize = group.maximize }
      if #old.p > 0 then C.sgd_step(old.p, old.g, mom ~= 0 and old.s1 or nil, opts, false) end
      if #fresh.p > 0 then
        C.sgd_step(fresh.p, fresh.g, fresh.s1, opts, true)
        for i, st in ipairs(fresh.st) do st.momentum_buffer = fresh.s1[i] end
      end
    end,
  })

-- ---- Adam and AdamW --------------------------------------------------------------------------------------

local function adam_validate(name)
  return function(_, g)
    check_nonneg(name, g, "lr", "learning rate")
    check_nonneg(name, g, "eps", "epsilon value")
    check_betas(name, g)
    check_nonneg(name, g, "weight_decay", "weight_decay value")
  end
end

local function adam_step_group(decoupled)
  return function(self, group)
    local buckets = {}
    for _, p in ipairs(group.params) do
      local g = p:grad()
      if g then
        local st = self.state[p]
        if not st then
          st = { step = 0, exp_avg = torsh.zeros_like(p), exp_avg_sq = torsh.zeros_like(p) }
          self.state[p] = st
        end
        if group.amsgrad and not st.max_exp_avg_sq then st.max_exp_avg_sq = torsh.zeros_like(p) end
        local b = bucket(buckets, st.step + 1)
        local n = #b.p + 1
        b.p[n], b.g[n], b.s1[n], b.s2[n], b.s3[n], b.st[n] = p, g, st.exp_avg, st.exp_avg_sq, st.max_exp_avg_sq, st
      end
    end
    local opts = { lr = group.lr, beta1 = group.betas[1], beta2 = group.betas[2], eps = group.eps,
                   weight_decay = group.weight_decay, amsgrad = group.amsgrad, maximize = group.maximize,
                   decoupled = decoupled }
    for _, step in ipairs(steps_in_order(buckets)) do
      local b = buckets[step]
      C.adam_step(b.p, b.g, b.s1, b.s2, group.amsgrad and b.s3 or nil, step, opts)
      for _, st in ipairs(b.st) do st.step = step end
    end
  end
end

--- optim.Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0, amsgrad=false, maximize=false})
optim.Adam = optim.class("Adam",
  { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, amsgrad = false, maximize = false,
    capturable = false, differentiable = false, fused = false },
  { ignored = IGNORED, validate = adam_validate("Adam"), step_group = adam_step_group(false) })

--- optim.AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2, amsgrad=false, maximize=false})
optim.AdamW = optim.class("AdamW",
  { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, amsgrad = false, maximize = false,
    capturable = false },
  { ignored = IGNORED, validate = adam_validate("AdamW"), step_group = adam_step_group(true) })

-- ---- RMSprop ----------------------------------------------------------------------------------------------

--- optim.RMSprop(params, {lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=false, maximize=false})
optim.RMSprop = optim.class("RMSprop",
  { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false, maximize = false,
    differentiable = false },
  {
    ignored = IGNORED,
    validate = function(_, g)
      check_nonneg("RMSprop", g, "lr", "learning rate")
      check_nonneg("RMSprop", g, "eps", "epsilon value")
      check_nonneg("RMSprop", g, "momentum", "momentum value")
      check_nonneg("RMSprop", g, "weight_decay", "weight_decay value")
      check_nonneg("RMSprop", g, "alpha", "alpha value")
    end,
    step_group = function(self, group)
      local b = bucket({}, 0)
      local use_mom = group.momentum > 0
      for _, p in ipairs(group.params) do
        local g = p:grad()
        if g then
          local st = self.state[p]
          if not st then st = { step = 0, square_avg = torsh.zeros_like(p) }; self.state[p] = st end
          if use_mom and not st.momentum_buffer then st.momentum_buffer = torsh.zeros_like(p) end
          if group.centered and not st.grad_avg then st.grad_avg = torsh.zeros_like(p) end
          local n = #b.p + 1
          b.p[n], b.g[n], b.s1[n], b.s2[n], b.s3[n], b.st[n] = p, g, st.square_avg, st.grad_avg, st.momentum_buffer, st
        end
      end
      if #b.p == 0 then return end
      C.rmsprop_step(b.p, b.g, b.s1, group.centered and b.s2 or nil, use_mom and b.s3 or nil,
        { lr = group.lr, alpha = group.alpha, eps = group.eps, weight_decay = group.weight_decay,
          momentum = group.momentum, centered = group.centered, maximize = group.maximize })
      for _, st in ipairs(b.st) do st.step = st.step + 1 end
    end,
  })

-- ---- Adagrad -----------------------------------------------------------------------------------------------

local function adagrad_state(p, group)
  return { step = 0, sum = torsh.full_like(p, group.initial_accumulator_value) }
end

--- optim.Adagrad(params, {lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, maximize=false})
optim.Adagrad = optim.class("Adagrad",
  { lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10, maximize = false },
  {
    ignored = IGNORED,
    validate = function(_, g)
      check_nonneg("Adagrad", g, "lr", "learning rate")
      check_nonneg("Adagrad", g, "lr_decay", "lr_decay value")
      check_nonneg("Adagrad", g, "weight_decay", "weight_decay value")
      check_nonneg("Adagrad", g, "initial_accumulator_value", "initial_accumulator_value value")
      check_nonneg("Adagrad", g, "eps", "epsilon value")
    end,
    init_group = function(self, group)      -- like PyTorch, the state exists from the start
      for _, p in ipairs(group.params) do self.state[p] = self.state[p] or adagrad_state(p, group) end
    end,
    step_group = function(self, group)
      local buckets = {}
      for _, p in ipairs(group.params) do
        local g = p:grad()
        if g then
          local st = self.state[p]
          if not st then st = adagrad_state(p, group); self.state[p] = st end
          local b = bucket(buckets, st.step + 1)
          local n = #b.p + 1
          b.p[n], b.g[n], b.s1[n], b.st[n] = p, g, st.sum, st
        end
      end
      local opts = { lr = group.lr, lr_decay = group.lr_decay, weight_decay = group.weight_decay, eps = group.eps,
                     maximize = group.maximize }
      for _, step in ipairs(steps_in_order(buckets)) do
        local b = buckets[step]
        C.adagrad_step(b.p, b.g, b.s1, step, opts)
        for _, st in ipairs(b.st) do st.step = step end
      end
    end,
  })

-- ---- gradient clipping ----------------------------------------------------------------------------------------

local function grads_of(params, name)
  if torsh.is_tensor(params) then params = { params } end
  if type(params) ~= "table" then fail("%s: params should be a Tensor or a list of Tensors, got %s", name, type(params)) end
  local grads = {}
  for i, p in ipairs(params) do
    if not torsh.is_tensor(p) then fail("%s: params[%d] is a %s, not a Tensor", name, i, type(p)) end
    local g = p:grad()
    if g then grads[#grads + 1] = g end
  end
  return grads
end

--- optim.clip_grad_norm_(params, max_norm, norm_type=2, error_if_nonfinite=false) -> total_norm
--- Scales the gradients in place so their joint norm is at most max_norm;
--- norm_type is a number > 0 or "inf" (math.huge). Returns the norm before
--- clipping (a number). The 4th argument may also be {error_if_nonfinite=}.
function optim.clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite)
  local grads = grads_of(params, "clip_grad_norm_")
  if type(max_norm) ~= "number" then fail("clip_grad_norm_: max_norm must be a number, got %s", type(max_norm)) end
  if norm_type == nil then norm_type = 2
  elseif norm_type == "inf" then norm_type = math.huge
  elseif type(norm_type) ~= "number" then fail("clip_grad_norm_: norm_type must be a number or 'inf', got %s", tostring(norm_type)) end
  if type(error_if_nonfinite) == "table" then error_if_nonfinite = error_if_nonfinite.error_if_nonfinite end
  if #grads == 0 then return 0.0 end
  return C.clip_grad_norm(grads, max_norm, norm_type, error_if_nonfinite and true or false)
end

--- optim.clip_grad_value_(params, clip_value): clamps every gradient in place
--- to [-clip_value, clip_value].
function optim.clip_grad_value_(params, clip_value)
  local grads = grads_of(params, "clip_grad_value_")
  if type(clip_value) ~= "number" then fail("clip_grad_value_: clip_value must be a number, got %s", type(clip_value)) end
  if #grads > 0 then C.clip_grad_value(grads, clip_value) end
end

torsh.optim = optim
optim.lr_scheduler = require "torsh.optim.lr_scheduler"
return optim
